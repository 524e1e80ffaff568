package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The files the examples and the documented CLI commands write when run
// from the repository's root are ignored by git, so that trying them
// leaves `git status` clean.
func TestExampleOutputIgnored(t *testing.T) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skip("not in a git checkout: ", err)
	}
	written := []string{
		"crypto.key", "quickstart.db", // quickstart
		"keys.json", "keys.json.lock", // keyward keygen / encrypt --create
		"demo/crypto.key", "demo/keys.json", "demo/rotation.db", "demo/audit/audit-00000001.jsonl", // rotation -dir demo
		"monitoring-spans.jsonl",                      // monitoring
		"keyward-keys.json", "keyward-keys.json.lock", // awskms, gcpkms
		"webapp-data/keys.json", // webapp
		"keyward",               // go build ./examples/keyward
	}
	cmd := exec.Command("git", append([]string{"check-ignore", "--no-index", "--verbose", "--non-matching"}, written...)...)
	cmd.Dir = strings.TrimSpace(string(top))
	out, err := cmd.Output()
	require.NoError(t, err, "git check-ignore: %s", out)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		assert.False(t, strings.HasPrefix(line, "::"), "not ignored: %s", strings.TrimSpace(strings.TrimPrefix(line, "::")))
	}
}
