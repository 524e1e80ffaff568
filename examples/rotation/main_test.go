package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), &out, dir); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"created crypto.key",
		fmt.Sprintf("stored %d customers under data key", customers),
		"rotated: primary data key is now",
		"  batch 4: 400 values done",
		"re-encrypted: scanned 400, rewritten 400, already current 0, skipped 0, failed 0",
		": 400 of 400",
		"customer 042 reads back: card 4111-0000-0000-0042, email c042@example.com",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "rotation.checkpoint")); !os.IsNotExist(err) {
		t.Errorf("checkpoint left after a finished run: %v", err)
	}
	// A second run: the first run's rows were rewritten already, only the
	// new rows (under the old primary of this run) are rewritten.
	out.Reset()
	if err := run(context.Background(), &out, dir); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "re-encrypted: scanned 800, rewritten 800, already current 0") {
		t.Errorf("second run:\n%s", out.String())
	}
	raw, err := os.ReadFile(filepath.Join(dir, "rotation.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("4111-0000")) || bytes.Contains(raw, []byte("@example.com")) {
		t.Error("rotation.db holds plaintext")
	}
}
