package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeSession is the CLI session the documentation shows, line for
// line, in a fresh directory.
const readmeSession = `keyward keygen
TOKEN=$(keyward encrypt --create -k crypto.key --store keys.json --aad patients/1/ssn 123-45-6789)
keyward decrypt -k crypto.key --store keys.json --aad patients/1/ssn "$TOKEN"
keyward inspect "$TOKEN"
keyward keys list --store keys.json
keyward decrypt -k crypto.key --store keys.json --aad patients/2/ssn "$TOKEN" || echo "exit $?"
keyward decrypt -k crypto.key --store keyz.json --aad patients/1/ssn "$TOKEN" || echo "exit $?"
`

// The documented session works as shown, run by a POSIX shell with the
// built keyward on PATH.
func TestReadmeSession(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sh", "-e", "-c", readmeSession)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	got := string(out)
	for _, want := range []string{
		"wrote a new key to crypto.key (mode 0600)\n",
		"123-45-6789{\"version\":1,\"algorithm\":\"AES-256-GCM\",\"key_id\":",
		"  data     active  AES-256-GCM  ",
		"keyward decrypt: the token does not authenticate: the wrong key file or key source, the wrong --aad, or an edited or truncated token\nexit 1\n",
		"keyward decrypt: keyring store keyz.json does not exist: check --store (only encrypt --create makes a store)\nexit 1\n",
	} {
		assert.Contains(t, got, want)
	}
	assert.Equal(t, []string{"crypto.key", "keys.json", "keys.json.lock"}, dirNames(t, dir), "what the session leaves")
}
