package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/keyring"
)

// writeAudit makes an audit log of n records under the audit key of the
// keyring in dir (crypto.key, keys.json) and returns its files and a
// checkpoint of its head.
func writeAudit(t *testing.T, dir string, n int) ([]string, access.Checkpoint) {
	t.Helper()
	ctx := context.Background()
	src, err := filekey.Open(filepath.Join(dir, "crypto.key"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := keyring.NewFileStore(filepath.Join(dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(ctx, "default", src, store)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	key, err := kr.DeriveKey(ctx, access.AuditKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "audit")
	log, err := access.OpenAuditLog(ctx, logDir, key.Bytes(), access.WithMaxFileSize(2000))
	if err != nil {
		t.Fatal(err)
	}
	a, err := access.NewAuditor(access.WithSink(log))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := a.LogAccessAttempt(ctx, "u"+string(rune('0'+i%10)), "decrypt", i%3 != 0); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := log.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := access.ListAuditFiles(logDir, "audit")
	if err != nil || len(files) < 2 {
		t.Fatalf("audit files = %v, %v; want several (rotation)", files, err)
	}
	return files, cp
}

func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	keyward(t, dir, "", "keygen")
	files, cp := writeAudit(t, dir, 40)
	verify := func(extra ...string) result {
		args := append([]string{"audit", "verify", "-k", "crypto.key", "--store", "keys.json"}, extra...)
		return keyward(t, dir, "", append(args, files...)...)
	}
	if r := verify(); r.code != 0 || !strings.Contains(r.stdout, "40 records") {
		t.Fatalf("verify intact = %+v", r)
	}
	if r := verify("--checkpoint", cp.String()); r.code != 0 {
		t.Fatalf("verify with checkpoint = %+v", r)
	}
	// Edit one record in the middle of the second file.
	data, _ := os.ReadFile(files[1])
	lines := strings.SplitAfter(string(data), "\n")
	lines[1] = strings.Replace(lines[1], `"decrypt"`, `"encrypt"`, 1)
	os.WriteFile(files[1], []byte(strings.Join(lines, "")), 0o600)
	r := verify()
	if r.code != 1 || !strings.Contains(r.stderr, files[1]+":2 seq") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("verify edited = %+v, want exit 1 naming %s:2", r, files[1])
	}
	os.WriteFile(files[1], data, 0o600)
	// Cut the tail: only the checkpoint tells.
	last := files[len(files)-1]
	tail, _ := os.ReadFile(last)
	tl := strings.SplitAfter(string(tail), "\n")
	os.WriteFile(last, []byte(strings.Join(tl[:len(tl)-2], "")), 0o600)
	if r := verify("--checkpoint", cp.String()); r.code != 1 {
		t.Fatalf("verify cut tail against checkpoint = %+v, want exit 1", r)
	}
	// Wrong key: another keyring's audit key.
	if r := keyward(t, dir, "", append([]string{"audit", "verify", "-k", "crypto.key", "--store", "keys.json", "--keyring", "other"}, files[0])...); r.code != 1 {
		t.Fatalf("verify with another keyring's key = %+v", r)
	}
	if r := keyward(t, dir, "", "audit", "verify", "-k", "crypto.key"); r.code != 2 {
		t.Fatalf("verify without --store = %+v, want exit 2", r)
	}
	if r := keyward(t, dir, "", "audit", "list"); r.code != 2 {
		t.Fatalf("audit list = %+v, want exit 2", r)
	}
}
