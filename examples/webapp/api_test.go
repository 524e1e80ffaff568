package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/internal/dbtest"
)

// The record every API test creates; none of its values may appear in a
// log line, an audit record or a span.
var ada = recordInput{Name: "Ada Quill", SSN: "987-65-4329", Email: "Ada.Quill@Example.com", Notes: "allergic to walnuts"}

// decision is one question to the guard: an action on a resource.
type decision struct{ action, resource string }

func field(action, column string) decision {
	return decision{action, access.FieldResource(table, column)}
}

func onKeyring(action string) decision { return decision{action, access.KeyringResource(keyringName)} }

// operation is one API call of the role matrix.
type operation struct {
	name, method, path string
	body               any
	// asks are the guard decisions the call needs.
	asks []decision
	// onlyPermitted: the call asks only for what the policy permits and
	// masks the rest, so it is never refused.
	onlyPermitted bool
	// roles are the roles that may make the call, written down by hand
	// (the policy is checked against them, not the other way round).
	roles []string
}

func operations() []operation {
	enc := []decision{field("encrypt", "ssn"), field("encrypt", "email"), field("encrypt", "notes")}
	all := []string{"clerk", "doctor", "admin"}
	return []operation{
		{name: "list", method: "GET", path: "/api/records", asks: []decision{field("decrypt", "email")}, onlyPermitted: true, roles: all},
		{name: "stored row", method: "GET", path: "/api/records/{id}/stored",
			asks: []decision{field("decrypt", "ssn"), field("decrypt", "email"), field("decrypt", "notes")}, onlyPermitted: true, roles: all},
		{name: "create", method: "POST", path: "/api/records", body: recordInput{Name: "Bo Lind", SSN: "900-11-2222", Email: "bo@example.org"},
			asks: enc, roles: []string{"clerk", "doctor"}},
		{name: "search", method: "POST", path: "/api/records/search", body: searchRequest{Email: "ada.quill@example.com"},
			asks: []decision{field("derive", "email"), field("decrypt", "email")}, roles: []string{"clerk", "doctor"}},
		{name: "reveal", method: "POST", path: "/api/records/{id}/reveal",
			asks: []decision{field("decrypt", "ssn"), field("decrypt", "notes")}, roles: []string{"doctor"}},
		{name: "keys", method: "GET", path: "/api/keys", asks: []decision{onKeyring("manage")}, roles: []string{"admin"}},
		{name: "rotate", method: "POST", path: "/api/keys/rotate", asks: []decision{onKeyring("rotate")}, roles: []string{"admin"}},
		{name: "re-encrypt", method: "POST", path: "/api/keys/reencrypt", asks: []decision{onKeyring("rotate")}, roles: []string{"admin"}},
		{name: "re-encrypt events", method: "GET", path: "/api/keys/reencrypt/events", asks: []decision{onKeyring("manage")}, roles: []string{"admin"}},
		{name: "audit", method: "GET", path: "/api/audit", asks: []decision{onKeyring("manage")}, roles: []string{"admin"}},
		{name: "tampered copy", method: "GET", path: "/api/audit/tamper", asks: []decision{onKeyring("manage")}, roles: []string{"admin"}},
		{name: "monitoring", method: "GET", path: "/api/monitoring", asks: []decision{onKeyring("manage")}, roles: []string{"admin"}},
	}
}

// roleUsers are the demo users by role.
var roleUsers = map[string]string{"clerk": "alice", "doctor": "bob", "admin": "carol"}

// TestRoleMatrix makes every API call as every role and checks the status,
// that the refusals are 403s saying they were audited, and that the audit
// log gained exactly the guard's decisions of the call: the allowed ones
// as allow, a refused call with at least one deny, all as the caller.
// Then the chain verifies, and no value of the record appears in the
// request log, the audit log or a span.
func TestRoleMatrix(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ta := newTestApp(t, db, 0)
		clerk := ta.signIn(t, "alice")
		var created map[string]string
		require.Equal(t, http.StatusOK, clerk.call("POST", "/api/records", ada, &created), "create the test record")
		id := created["id"]
		policy := ta.guard.Policy()

		for _, op := range operations() {
			for _, role := range []string{"clerk", "doctor", "admin"} {
				user := roleUsers[role]
				t.Run(op.name+"/"+role, func(t *testing.T) {
					c := ta.signIn(t, user)
					ctx := access.WithPrincipal(t.Context(), access.Principal{UserID: user, Roles: []string{role}})
					permitted := func(d decision) bool { return policy.Authorize(ctx, d.action, d.resource) == nil }
					wantOK := slices.Contains(op.roles, role)
					if !op.onlyPermitted {
						policyOK := true
						for _, d := range op.asks {
							policyOK = policyOK && permitted(d)
						}
						require.Equal(t, wantOK, policyOK, "policy.json and the expected roles disagree on %s as %s", op.name, role)
					}

					before := len(ta.auditRecords(t))
					status, body := c.send(c.request(op.method, strings.ReplaceAll(op.path, "{id}", id), op.body))
					ta.job.wait() // a re-encryption started by the call
					got := ta.auditRecords(t)[before:]

					if !wantOK {
						assert.Equal(t, http.StatusForbidden, status, "%s as %s: %s", op.name, role, body)
						var eb errorBody
						require.NoError(t, json.Unmarshal(body, &eb), "%s as %s: body %s", op.name, role, body)
						assert.True(t, eb.Audited, "%s as %s: the refusal says it was audited", op.name, role)
					} else {
						assert.Less(t, status, 300, "%s as %s: %s", op.name, role, body)
					}
					var want []decision
					for _, d := range op.asks {
						if !op.onlyPermitted || permitted(d) {
							want = append(want, d)
						}
					}
					var seen []decision
					denials := 0
					for _, r := range got {
						d := decision{r.Action, r.Resource}
						seen = append(seen, d)
						assert.Equal(t, user, r.User, "%s as %s: audit record %+v is the caller's", op.name, role, r)
						assert.Contains(t, want, d, "%s as %s: audit record %+v is a decision of the call", op.name, role, r)
						wantDecision := map[bool]string{true: "allow", false: "deny"}[permitted(d)]
						assert.Equal(t, wantDecision, r.Decision, "%s as %s: decision on %v", op.name, role, d)
						if r.Decision == "deny" {
							denials++
						}
					}
					if wantOK {
						assert.ElementsMatch(t, want, seen, "%s as %s: every decision audited once", op.name, role)
					} else {
						assert.Positive(t, denials, "%s as %s: the refusal is audited", op.name, role)
					}
				})
			}
		}

		v, err := ta.audit.verify(t.Context())
		require.NoError(t, err)
		assert.True(t, v.OK, "the audit chain verifies: %+v", v)
		assertNoValues(t, ta)
	})
}

// assertNoValues checks that no value of the test record reached the
// request log, the audit log or a span, and that each was looked at.
func assertNoValues(t *testing.T, ta *testApp) {
	t.Helper()
	logs, audit, spans := ta.logs.String(), ta.auditText(t), ta.spanText()
	require.Contains(t, logs, "route=", "the request log has lines")
	require.Contains(t, audit, `"decision"`, "the audit log has records")
	require.Contains(t, spans, "keyward.access", "spans carry access events")
	for _, v := range []string{ada.Name, ada.SSN, ada.Email, strings.ToLower(ada.Email), ada.Notes} {
		assert.NotContains(t, logs, v, "request log")
		assert.NotContains(t, audit, v, "audit log")
		assert.NotContains(t, spans, v, "spans")
	}
}

// TestRecordsFlow follows one record through the roles: created by a
// clerk, stored as tokens, listed with masks by role, found by e-mail in
// any letter case, revealed for a doctor only.
func TestRecordsFlow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ta := newTestApp(t, db, 0)
		alice, bob, carol := ta.signIn(t, "alice"), ta.signIn(t, "bob"), ta.signIn(t, "carol")
		var created map[string]string
		require.Equal(t, http.StatusOK, alice.call("POST", "/api/records", ada, &created))
		id := created["id"]

		// The database holds tokens only.
		var raw storedRow
		require.NoError(t, db.Raw("SELECT ssn, email, notes FROM records WHERE id = ?", id).Scan(&raw).Error)
		for col, v := range map[string]string{"ssn": raw.SSN, "email": raw.Email, "notes": raw.Notes} {
			assert.True(t, strings.HasPrefix(v, "kw1."), "stored %s is a token, got %.12q", col, v)
		}

		lists := []struct {
			c         *client
			wantEmail bool
		}{{alice, true}, {bob, true}, {carol, false}}
		for _, l := range lists {
			var page recordPage
			require.Equal(t, http.StatusOK, l.c.call("GET", "/api/records", nil, &page), "list as %s", l.c.user)
			require.Len(t, page.Records, 1, "list as %s", l.c.user)
			r := page.Records[0]
			if l.wantEmail {
				require.NotNil(t, r.Email, "list as %s shows the e-mail address", l.c.user)
				assert.Equal(t, ada.Email, *r.Email, "list as %s", l.c.user)
				assert.Equal(t, []string{"ssn", "notes"}, r.Masked, "list as %s", l.c.user)
			} else {
				assert.Nil(t, r.Email, "list as %s masks the e-mail address", l.c.user)
				assert.Equal(t, []string{"ssn", "notes", "email"}, r.Masked, "list as %s", l.c.user)
			}
		}

		for _, q := range []string{"ada.quill@example.com", "  ADA.QUILL@EXAMPLE.COM ", "Ada.Quill@Example.com"} {
			var page recordPage
			require.Equal(t, http.StatusOK, alice.call("POST", "/api/records/search", searchRequest{Email: q}, &page), "search %q", q)
			require.Len(t, page.Records, 1, "search %q finds the record", q)
			assert.Equal(t, id, page.Records[0].ID, "search %q", q)
		}
		var none recordPage
		require.Equal(t, http.StatusOK, alice.call("POST", "/api/records/search", searchRequest{Email: "nobody@example.com"}, &none))
		assert.Empty(t, none.Records, "search for an unknown address")

		var rev revealed
		require.Equal(t, http.StatusOK, bob.call("POST", "/api/records/"+id+"/reveal", nil, &rev), "reveal as doctor")
		assert.Equal(t, revealed{SSN: ada.SSN, Notes: ada.Notes}, rev, "reveal as doctor")
		status, body := alice.send(alice.request("POST", "/api/records/"+id+"/reveal", nil))
		assert.Equal(t, http.StatusForbidden, status, "reveal as clerk")
		assert.NotContains(t, string(body), ada.SSN, "the refusal shows no value")

		// The stored row next to what each role sees.
		var stored struct{ Columns []storedColumn }
		require.Equal(t, http.StatusOK, alice.call("GET", "/api/records/"+id+"/stored", nil, &stored))
		cols := map[string]storedColumn{}
		for _, c := range stored.Columns {
			cols[c.Column] = c
		}
		assert.Equal(t, ta.kr.Primary(), cols["ssn"].KeyID, "the SSN token names the primary key")
		assert.True(t, cols["ssn"].Masked, "a clerk does not see the SSN")
		assert.Empty(t, cols["ssn"].Seen, "a clerk does not see the SSN")
		assert.Equal(t, ada.Email, cols["email"].Seen, "a clerk sees the e-mail address")
		assert.Equal(t, raw.SSN, cols["ssn"].Stored, "the stored SSN is the token")

		// Bad input: a clear error naming the field, never echoing the value.
		bad := []recordInput{
			{Name: "", SSN: ada.SSN, Email: ada.Email},
			{Name: "X", SSN: "123456789", Email: ada.Email},
			{Name: "X", SSN: ada.SSN, Email: "not an address"},
			{Name: "X", SSN: ada.SSN, Email: ada.Email, Notes: strings.Repeat("n", 2001)},
		}
		for _, in := range bad {
			status, body := alice.send(alice.request("POST", "/api/records", in))
			assert.Equal(t, http.StatusBadRequest, status, "create %+v: %s", in, body)
			assert.NotContains(t, string(body), in.SSN, "create %+v: the error echoes no value", in)
		}
		status, _ = alice.send(alice.request("POST", "/api/records/not-a-uuid/reveal", nil))
		assert.Equal(t, http.StatusBadRequest, status, "reveal with a malformed ID")
		status, _ = bob.send(bob.request("POST", "/api/records/00000000-0000-4000-8000-000000000000/reveal", nil))
		assert.Equal(t, http.StatusNotFound, status, "reveal of a missing record")
		assertNoValues(t, ta)
	})
}

// TestCSRF checks that a state-changing request is refused, and changes
// nothing, without the session's CSRF token, with another session's
// token, from another site, or as a form post.
func TestCSRF(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ta := newTestApp(t, db, 0)
		alice, other := ta.signIn(t, "alice"), ta.signIn(t, "bob")
		cases := []struct {
			name   string
			edit   func(*http.Request)
			status int
		}{
			{"no token", func(r *http.Request) { r.Header.Del(csrfHeader) }, http.StatusForbidden},
			{"wrong token", func(r *http.Request) { r.Header.Set(csrfHeader, otherFirst(alice.csrf)) }, http.StatusForbidden},
			{"another session's token", func(r *http.Request) { r.Header.Set(csrfHeader, other.csrf) }, http.StatusForbidden},
			{"cross-site fetch", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }, http.StatusForbidden},
			{"other origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, http.StatusForbidden},
			{"form post", func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, http.StatusUnsupportedMediaType},
			{"text post", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, http.StatusUnsupportedMediaType},
			{"valid", func(*http.Request) {}, http.StatusOK},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var before int64
				require.NoError(t, db.Model(&Record{}).Count(&before).Error)
				in := recordInput{Name: fmt.Sprintf("CSRF %d", i), SSN: "900-00-0001", Email: "csrf@example.org"}
				req := alice.request("POST", "/api/records", in)
				tc.edit(req)
				status, body := alice.send(req)
				assert.Equal(t, tc.status, status, "%s: %s", tc.name, body)
				var after int64
				require.NoError(t, db.Model(&Record{}).Count(&after).Error)
				wantNew := int64(0)
				if tc.status == http.StatusOK {
					wantNew = 1
				}
				assert.Equal(t, before+wantNew, after, "%s: records created", tc.name)
			})
		}
	})
}

// otherFirst returns tok with its first character changed (to "x", or to
// "y" when it is "x" already), so the result is never tok.
func otherFirst(tok string) string {
	if strings.HasPrefix(tok, "x") {
		return "y" + tok[1:]
	}
	return "x" + tok[1:]
}

// TestAuthentication checks sign-in and the session cookie: no cookie,
// a forged or edited cookie, unknown and scripted users, sign-out. Every
// sign-in attempt is audited.
func TestAuthentication(t *testing.T) {
	ta := newTestApp(t, dbtest.Open(t, dbtest.SQLite, nil), 0)
	anon := ta.anonymous(t)
	assert.Equal(t, http.StatusUnauthorized, anon.call("GET", "/api/session", nil, nil), "no cookie")

	alice := ta.signIn(t, "alice")
	u := ta.srv.URL
	base, err := url.Parse(u)
	require.NoError(t, err)
	var cookie *http.Cookie
	for _, c := range alice.http.Jar.Cookies(base) {
		if c.Name == cookieName {
			cookie = c
		}
	}
	require.NotNil(t, cookie, "the session cookie")

	payload, sig, _ := strings.Cut(cookie.Value, ".")
	forged := []struct{ name, value string }{
		{"user changed", b64(strings.Replace(unb64(t, payload), "alice", "carol", 1)) + "." + sig},
		{"signature cut", payload + "." + sig[:len(sig)-2]},
		{"no signature", payload},
		{"garbage", "!!!"},
		{"signed by another key", func() string {
			s := newSessions(make([]byte, 32), false)
			w := &headerRecorder{h: http.Header{}}
			s.issue(w, "carol")
			c, err := http.ParseSetCookie(w.h.Get("Set-Cookie"))
			require.NoError(t, err)
			return c.Value
		}()},
	}
	for _, f := range forged {
		req, err := http.NewRequestWithContext(t.Context(), "GET", u+"/api/keys", nil)
		require.NoError(t, err)
		req.AddCookie(&http.Cookie{Name: cookieName, Value: f.value})
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "cookie %s", f.name)
	}

	// The cookie's attributes.
	rec := &headerRecorder{h: http.Header{}}
	ta.sessions.issue(rec, "alice")
	set := rec.h.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		assert.Contains(t, set, want, "session cookie attribute")
	}

	before := len(ta.auditRecords(t))
	for _, user := range []string{"mallory", "nobody", strings.Repeat("x", 500)} {
		status := anon.call("POST", "/api/signin", map[string]string{"user": user}, nil)
		assert.Equal(t, http.StatusBadRequest, status, "sign in as %.20q", user)
	}
	got := ta.auditRecords(t)[before:]
	require.Len(t, got, 3, "every refused sign-in is audited")
	for _, r := range got {
		assert.Equal(t, "deny", r.Decision, "refused sign-in %+v", r)
		assert.Equal(t, actionSignIn, r.Action, "refused sign-in %+v", r)
		assert.LessOrEqual(t, len(r.User), maxUserID, "user ID from the request is bounded")
	}

	require.Equal(t, http.StatusNoContent, alice.call("POST", "/api/signout", nil, nil), "sign out")
	assert.Equal(t, http.StatusUnauthorized, alice.call("GET", "/api/session", nil, nil), "after sign-out")
}

// TestWebDefaults checks the security headers on every kind of response,
// the body size limit and unknown routes.
func TestWebDefaults(t *testing.T) {
	ta := newTestApp(t, dbtest.Open(t, dbtest.SQLite, nil), 0)
	alice := ta.signIn(t, "alice")
	reqs := []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"page", alice.request("GET", "/", nil), http.StatusOK},
		{"script", alice.request("GET", "/app.js", nil), http.StatusOK},
		{"api", alice.request("GET", "/api/records", nil), http.StatusOK},
		{"api error", alice.request("GET", "/api/keys", nil), http.StatusForbidden},
		{"unknown api route", alice.request("GET", "/api/nothing", nil), http.StatusNotFound},
		{"missing file", alice.request("GET", "/nothing.js", nil), http.StatusNotFound},
		{"post to a page", alice.request("POST", "/", nil), http.StatusMethodNotAllowed},
		{"large body", alice.request("POST", "/api/records", recordInput{Notes: strings.Repeat("x", maxBody)}), http.StatusRequestEntityTooLarge},
	}
	for _, r := range reqs {
		res, err := alice.http.Do(r.req)
		require.NoError(t, err, r.name)
		res.Body.Close()
		assert.Equal(t, r.status, res.StatusCode, r.name)
		assert.Equal(t, contentSecurityPolicy, res.Header.Get("Content-Security-Policy"), "%s: CSP", r.name)
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), "%s: nosniff", r.name)
		assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"), "%s: frames", r.name)
		assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"), "%s: referrer", r.name)
	}
	assert.NotContains(t, contentSecurityPolicy, "unsafe-inline", "no inline script or style")

	// The frontend has no inline script, style attribute or foreign origin.
	for _, name := range []string{"web/index.html", "web/app.js", "web/app.css"} {
		b, err := webFS.ReadFile(name)
		require.NoError(t, err)
		s := string(b)
		assert.NotContains(t, s, "http://"+"cdn", name)
		for _, bad := range []string{"<script>", " style=", "https://", "innerHTML", "eval("} {
			assert.NotContains(t, s, bad, "%s contains %q", name, bad)
		}
	}
}

// TestRotation rotates the key as admin, re-encrypts with the progress
// stream, and checks that the inventory moved to the new primary and that
// the records still decrypt.
func TestRotation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ta := newTestApp(t, db, 30)
		carol, bob := ta.signIn(t, "carol"), ta.signIn(t, "bob")
		var before keysPage
		require.Equal(t, http.StatusOK, carol.call("GET", "/api/keys", nil, &before))
		require.Len(t, before.Inventory.ByKey, 1, "one data key before the rotation")
		old := before.Primary
		assert.Equal(t, int64(90), before.Inventory.Total, "30 records x 3 encrypted columns")
		assert.Equal(t, int64(90), before.Inventory.ByKey[0].Values, "all under the first key")

		var rot map[string]uint32
		require.Equal(t, http.StatusOK, carol.call("POST", "/api/keys/rotate", nil, &rot))
		require.NotEqual(t, old, rot["primary"], "a new primary")

		var st jobState
		require.Equal(t, http.StatusOK, carol.call("POST", "/api/keys/reencrypt", nil, &st))
		assert.Equal(t, int64(90), st.Total, "the job's total")
		// The progress stream ends when the job is done.
		status, stream := carol.send(carol.request("GET", "/api/keys/reencrypt/events", nil))
		require.Equal(t, http.StatusOK, status)
		var last jobState
		events := 0
		sc := bufio.NewScanner(bytes.NewReader(stream))
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				require.NoError(t, json.Unmarshal([]byte(data), &last), "event %s", data)
				events++
			}
		}
		require.Positive(t, events, "progress events")
		assert.True(t, last.Done, "the last event says done: %+v", last)
		assert.Equal(t, int64(90), last.Rewritten, "every value rewritten: %+v", last)

		var after keysPage
		require.Equal(t, http.StatusOK, carol.call("GET", "/api/keys", nil, &after))
		require.Len(t, after.Inventory.ByKey, 1, "one data key in use after re-encryption: %+v", after.Inventory)
		assert.Equal(t, rot["primary"], after.Inventory.ByKey[0].KeyID, "the inventory moved to the new primary")
		states := map[uint32]string{}
		for _, k := range after.Keys {
			states[k.ID] = k.State
		}
		assert.Equal(t, "enabled", states[old], "the old key still decrypts")
		assert.Equal(t, "active", states[rot["primary"]], "the new key is the primary")

		var page recordPage
		require.Equal(t, http.StatusOK, bob.call("GET", "/api/records", nil, &page))
		require.NotEmpty(t, page.Records)
		var rev revealed
		require.Equal(t, http.StatusOK, bob.call("POST", "/api/records/"+page.Records[0].ID+"/reveal", nil, &rev))
		assert.Regexp(t, ssnPattern, rev.SSN, "a re-encrypted SSN decrypts")

		// A second job while none runs is fine; the blind index still finds.
		var found recordPage
		require.Equal(t, http.StatusOK, bob.call("POST", "/api/records/search", searchRequest{Email: *page.Records[0].Email}, &found))
		assert.Len(t, found.Records, 1, "search after rotation")
	})
}

// TestIncidentReplay replays the scripted incident and checks that the
// analyzer found the bulk read and the burst of denials, that the chart
// has the scripted user's decryptions and denials, and that the denials
// are in the audit log.
func TestIncidentReplay(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ta := newTestApp(t, db, 120)
		carol := ta.signIn(t, "carol")
		var mon chart
		require.Equal(t, http.StatusOK, carol.call("GET", "/api/monitoring", nil, &mon))
		assert.Empty(t, mon.Marks, "no findings before the incident")

		var res incidentResult
		require.Equal(t, http.StatusOK, carol.call("POST", "/api/monitoring/replay", nil, &res))
		assert.Equal(t, incidentResult{User: "mallory", Requests: 5 + 12, Read: 120, Denied: 12, Findings: 2}, res)

		require.Equal(t, http.StatusOK, carol.call("GET", "/api/monitoring", nil, &mon))
		kinds := map[string]string{}
		for _, f := range mon.Marks {
			kinds[string(f.Kind)] = f.UserID
		}
		assert.Equal(t, map[string]string{"bulk_read": "mallory", "access_denied_burst": "mallory"}, kinds, "findings")
		var series *userSeries
		for i := range mon.Users {
			if mon.Users[i].User == "mallory" {
				series = &mon.Users[i]
			}
		}
		require.NotNil(t, series, "the chart has mallory")
		sum := func(xs []int) (n int) {
			for _, x := range xs {
				n += x
			}
			return n
		}
		assert.Equal(t, 120, sum(series.Counts[seriesDecrypt]), "mallory's decryptions on the chart")
		assert.Equal(t, 24, sum(series.Counts[seriesDenied]), "mallory's denials on the chart (SSN and notes, 12 times)")

		var audit auditPage
		require.Equal(t, http.StatusOK, carol.call("GET", "/api/audit?user=mallory&result=deny", nil, &audit))
		assert.Len(t, audit.Entries, 24, "the denials are audited")
		assert.True(t, audit.Verify.OK, "the chain verifies: %+v", audit.Verify)

		var tamper tamperDemo
		require.Equal(t, http.StatusOK, carol.call("GET", "/api/audit/tamper", nil, &tamper))
		assert.False(t, tamper.Result.OK, "the tampered copy fails verification")
		assert.Contains(t, tamper.Result.Error, "mac does not verify", "the tampered copy's error")
		assert.Contains(t, tamper.Original, `"decision":"deny"`)
		assert.Contains(t, tamper.Tampered, `"decision":"allow"`)
		v, err := ta.audit.verify(t.Context())
		require.NoError(t, err)
		assert.True(t, v.OK, "the log itself is untouched: %+v", v)
	})
}
