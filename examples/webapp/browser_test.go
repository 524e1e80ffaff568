package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/internal/dbtest"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the browser test's screenshots into assets/ (the README's)")

// browserTimeout bounds the whole browser test.
const browserTimeout = 90 * time.Second

// chromium returns the path of Debian's chromium, or skips the test
// outside CI (and fails it in CI) when it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed: install it with `apt-get install -y chromium` (Debian) to run the browser test"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser is a headless Chromium tab on the test server, with what the
// page reported: console errors (CSP violations among them) and the URL of
// every request.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // screenshot directory

	mu     sync.Mutex
	errors []string
	urls   []string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	b := &browser{t: t, ctx: ctx, base: base, shot: t.TempDir()}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.urls = append(b.urls, e.Request.URL)
		case *log.EventEntryAdded:
			// Network entries are HTTP statuses, which the flow checks
			// itself (a refused reveal is a 403); the rest, CSP violations
			// among them, are errors of the page.
			if string(e.Entry.Level) == "error" && e.Entry.Source != "network" {
				b.errors = append(b.errors, string(e.Entry.Source)+": "+e.Entry.Text)
			}
		case *runtime.EventExceptionThrown:
			b.errors = append(b.errors, "exception: "+e.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if string(e.Type) == "error" {
				b.errors = append(b.errors, "console.error")
			}
		}
	})
	require.NoError(t, err, "start the browser")
	return b
}

// run runs actions, failing the test with step's name on error.
func (b *browser) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, actions...), "browser step %q", step)
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, step, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	require.NoError(b.t, err, "browser step %q", step)
	return v
}

// js runs a JavaScript statement.
func js(expr string) chromedp.Action[chromedp.Void] { return chromedp.Evaluate[chromedp.Void](expr) }

// waitFor waits until the JavaScript expression is true.
func (b *browser) waitFor(step, expr string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		b.failure(step)
	}
	require.NoError(b.t, err, "browser step %q: waiting for %s", step, expr)
}

// failure saves a screenshot of the page and reports what it showed.
func (b *browser) failure(step string) {
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err == nil {
		path := filepath.Join(b.shot, "failure.png")
		_ = os.WriteFile(path, png, 0o644)
		b.t.Logf("step %q failed; screenshot %s", step, path)
	}
	if msg, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector("#flash").textContent`)); err == nil {
		b.t.Logf("the page's last message: %q", msg)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.t.Logf("page errors: %q", b.errors)
}

// text returns the text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err, "read %s", sel)
	return strings.TrimSpace(s)
}

// screenshot saves the viewport as name.png in the test's directory and,
// with -update-screenshots, in assets/.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	require.NoError(b.t, err, "screenshot %s", name)
	require.NoError(b.t, os.WriteFile(filepath.Join(b.shot, name+".png"), png, 0o644))
	if *updateScreenshots {
		require.NoError(b.t, os.WriteFile(filepath.Join("assets", name+".png"), png, 0o644))
	}
}

// signIn signs out whoever is signed in and signs in as user.
func (b *browser) signIn(user, name string) {
	b.t.Helper()
	if eval[bool](b, "who is signed in", `!document.querySelector("#whoami").hidden`) {
		b.run("sign out", chromedp.Click(chromedp.CSS("#signout")))
	}
	b.waitFor("the sign-in page", fmt.Sprintf(`!document.querySelector("#page-signin").hidden && document.querySelector("#signin-%s") !== null`, user))
	b.run("sign in as "+user, js(fmt.Sprintf(`document.querySelector("#signin-%s").click()`, user)))
	b.waitFor("records of "+user, fmt.Sprintf(`document.querySelector("#user-name").textContent === %q && !document.querySelector("#page-records").hidden && document.querySelectorAll("#records tbody tr").length > 0`, name))
}

// row is a JavaScript expression for the list row of the record named
// name.
func row(name string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#records tbody tr")].find(r => r.querySelector("td.name").textContent === %q)`, name)
}

// TestBrowser drives the application in headless Chromium through the
// whole flow: a clerk creates a record, sees it masked, is refused a
// reveal and finds it by e-mail; a doctor reveals it; the admin rotates
// the key and watches the re-encryption move the inventory, finds the
// denied reveal in the audit view and replays an incident that the
// monitoring page shows as findings on the chart. No page reports an error
// (a CSP violation would be one) and no request URL carries a value.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser test is not short")
	}
	ta := newTestApp(t, dbtest.Open(t, dbtest.SQLite, nil), 120)
	b := newBrowser(t, ta.srv.URL)
	start := time.Now()

	// Sign-in page.
	b.run("open", chromedp.Navigate(b.base+"/"))
	b.run("users", chromedp.WaitVisible(chromedp.CSS("#signin-carol")))
	b.screenshot("signin")

	// Clerk: create, masked, reveal refused, search by e-mail, stored row.
	b.signIn("alice", "Alice")
	b.run("create a record",
		chromedp.SetValue(chromedp.CSS("#f-name"), ada.Name),
		chromedp.SetValue(chromedp.CSS("#f-ssn"), ada.SSN),
		chromedp.SetValue(chromedp.CSS("#f-email"), ada.Email),
		chromedp.SetValue(chromedp.CSS("#f-notes"), ada.Notes),
		chromedp.Click(chromedp.CSS("#create")))
	b.waitFor("the new record is listed", row(ada.Name)+` !== undefined`)
	b.waitFor("the clerk sees the e-mail address", row(ada.Name)+fmt.Sprintf(`.querySelector("td.email").textContent === %q`, ada.Email))
	b.waitFor("the clerk sees the SSN masked", row(ada.Name)+`.querySelector('td[data-field="ssn"]').classList.contains("masked")`)
	b.run("reveal as clerk", js(row(ada.Name)+`.querySelector("button.reveal").click()`))
	b.waitFor("the reveal is refused", row(ada.Name)+`.querySelector('td[data-field="ssn"]').textContent === "denied (audited)"`)
	b.screenshot("records-clerk")

	b.run("search by e-mail",
		chromedp.SetValue(chromedp.CSS("#s-email"), "ADA.QUILL@example.com"),
		chromedp.Click(chromedp.CSS("#search")))
	b.waitFor("found by the blind index", `document.querySelector("#list-title").textContent === "1 found by e-mail" && `+row(ada.Name)+` !== undefined`)

	b.run("the stored row", js(row(ada.Name)+`.querySelector("a.stored-link").click()`))
	b.waitFor("the stored row is shown", `document.querySelector('#stored tr[data-column="ssn"] td.token')?.textContent.startsWith("kw1.")`)
	assert.NotContains(t, b.text("#stored tbody"), ada.SSN, "the stored row shows no SSN to a clerk")
	assert.Contains(t, b.text("#stored tbody"), ada.Email, "a clerk sees the e-mail address next to its token")
	b.screenshot("stored")

	// Doctor: reveal.
	b.signIn("bob", "Dr. Bob")
	b.waitFor("the record is listed", row(ada.Name)+` !== undefined`)
	b.run("reveal as doctor", js(row(ada.Name)+`.querySelector("button.reveal").click()`))
	b.waitFor("the SSN is revealed", row(ada.Name)+fmt.Sprintf(`.querySelector('td[data-field="ssn"]').textContent === %q`, ada.SSN))
	b.waitFor("the notes are revealed", row(ada.Name)+fmt.Sprintf(`.querySelector('td[data-field="notes"]').textContent === %q`, ada.Notes))
	b.screenshot("records-doctor")

	// Admin: everything masked, rotate and re-encrypt.
	b.signIn("carol", "Carol")
	b.waitFor("the admin sees the e-mail masked", row(ada.Name)+`.querySelector('td[data-field="email"]').classList.contains("masked")`)
	b.run("keys page", chromedp.Click(chromedp.CSS(`nav a[data-page="keys"]`)))
	b.waitFor("keys listed", `document.querySelectorAll("#inventory tbody tr[data-primary]").length === 1`)
	oldPrimary := eval[string](b, "old primary", `document.querySelector('#inventory tbody tr[data-primary="yes"]').dataset.key`)
	b.run("rotate", chromedp.Click(chromedp.CSS("#rotate")))
	b.waitFor("a new primary", fmt.Sprintf(`document.querySelectorAll("#keys tbody tr").length === 3 && document.querySelector("#keys tbody tr.primary-key").dataset.key !== %q`, oldPrimary))
	b.waitFor("the inventory still on the old key", `document.querySelector('#inventory tbody tr[data-primary="no"]') !== null`)
	b.run("re-encrypt", chromedp.Click(chromedp.CSS("#reencrypt")))
	b.waitFor("the re-encryption finishes", `document.querySelector("#progress-text").dataset.state === "done"`)
	b.waitFor("the inventory moved to the new key", fmt.Sprintf(`(() => {
		const rows = document.querySelectorAll("#inventory tbody tr[data-primary]");
		return rows.length === 1 && rows[0].dataset.primary === "yes" && rows[0].dataset.key !== %q &&
			rows[0].querySelector("td.values").textContent === "363";
	})()`, oldPrimary))
	assert.Equal(t, b.text("#progress-text"), "done: 363 rewritten, 0 already current", "the progress line")
	b.screenshot("keys")

	// Audit: the clerk's denied reveal, the chain status, a tampered line.
	b.run("audit page", chromedp.Click(chromedp.CSS(`nav a[data-page="audit"]`)))
	b.waitFor("audit listed", `document.querySelectorAll("#audit tbody tr").length > 0`)
	b.run("only denials", chromedp.SetValue(chromedp.CSS("#a-result"), "deny"),
		js(`document.querySelector("#a-result").dispatchEvent(new Event("change"))`))
	b.waitFor("the clerk's denied reveal", `(() => {
		const rows = [...document.querySelectorAll("#audit tbody tr")];
		return rows.length > 0 && rows.every(r => r.dataset.decision === "deny") &&
			rows.some(r => r.dataset.user === "alice" && r.textContent.includes("field:records.ssn"));
	})()`)
	b.waitFor("the chain verifies", `document.querySelector("#verify").classList.contains("ok")`)
	b.run("tamper", chromedp.Click(chromedp.CSS("#tamper")))
	b.waitFor("the tampered copy fails", `document.querySelector("#tamper-result").textContent.includes("mac does not verify")`)
	b.screenshot("audit")

	// Monitoring: replay the incident; findings in the table and on the chart.
	b.run("monitoring page", chromedp.Click(chromedp.CSS(`nav a[data-page="monitoring"]`)))
	b.waitFor("the chart", `document.querySelector("#chart svg") !== null`)
	before := eval[int](b, "findings before", `document.querySelectorAll("#chart [data-finding]").length`)
	assert.Zero(t, before, "no findings on the chart before the incident")
	b.run("replay", chromedp.Click(chromedp.CSS("#replay")))
	b.waitFor("the findings", `document.querySelector('#findings tr[data-kind="bulk_read"][data-user="mallory"]') !== null &&
		document.querySelector('#findings tr[data-kind="access_denied_burst"][data-user="mallory"]') !== null`)
	b.waitFor("the findings on the chart", `document.querySelector('#chart g[data-user="mallory"] [data-finding="bulk_read"]') !== null &&
		document.querySelector('#chart g[data-user="mallory"] [data-finding="access_denied_burst"]') !== null`)
	b.screenshot("monitoring")

	b.mu.Lock()
	defer b.mu.Unlock()
	assert.Empty(t, b.errors, "the pages report no errors (CSP violations, exceptions)")
	require.NotEmpty(t, b.urls, "requests were seen")
	for _, u := range b.urls {
		for _, v := range []string{ada.SSN, ada.Email, strings.ToLower(ada.Email), "ADA.QUILL", ada.Notes} {
			assert.NotContains(t, u, v, "a request URL carries a value")
		}
		assert.True(t, strings.HasPrefix(u, b.base) || strings.HasPrefix(u, "data:"), "request to another origin: %s", u)
	}
	t.Logf("browser flow took %s; screenshots in %s", time.Since(start).Round(time.Millisecond), b.shot)
}
