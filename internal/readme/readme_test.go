package readme

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// root is the module's root directory, two levels up from this package.
const root = "../.."

// shBlocks returns, for each level-2 section of the README, its fenced sh
// blocks, each as a list of command lines (comments and blank lines
// dropped, trailing comments cut).
func shBlocks(t *testing.T) map[string][][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	defer f.Close()
	blocks := map[string][][]string{}
	var section string
	var block []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		case !in && line == "```sh":
			in, block = true, nil
		case in && line == "```":
			in = false
			blocks[section] = append(blocks[section], block)
		case in:
			if i := strings.Index(line, " #"); i >= 0 {
				line = line[:i]
			}
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				block = append(block, line)
			}
		}
	}
	require.NoError(t, sc.Err())
	require.False(t, in, "README.md ends inside a code block")
	return blocks
}

// section returns the one sh block of a README section.
func section(t *testing.T, name string) []string {
	t.Helper()
	b := shBlocks(t)[name]
	require.Len(t, b, 1, "README section %q has one sh block", name)
	return b[0]
}

// build compiles the main package pkg (relative to the module root) into
// dir/name and returns the binary's path.
func build(t *testing.T, pkg, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", pkg, out)
	return bin
}

// newcomerEnv is the environment of a user who has set nothing up: no
// PostgreSQL DSN, so the examples use their embedded SQLite database.
func newcomerEnv(extraPath string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KEYWARD_PG_DSN=") {
			continue
		}
		if extraPath != "" && strings.HasPrefix(kv, "PATH=") {
			kv = "PATH=" + extraPath + string(os.PathListSeparator) + strings.TrimPrefix(kv, "PATH=")
		}
		env = append(env, kv)
	}
	return env
}

func TestInstallLines(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^module (\S+)$`).FindSubmatch(mod)
	require.NotNil(t, m, "go.mod names its module")
	module := string(m[1])

	lines := section(t, "Install")
	require.Equal(t, []string{
		"go get " + module + "@latest",
		"go install " + module + "/examples/keyward@latest",
		"go install ./examples/keyward",
	}, lines, "the README's install lines")
	// The command the install lines name is a main package of this module.
	cmd := exec.Command("go", "list", "-f", "{{.Name}} {{.ImportPath}}", "./examples/keyward")
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "main "+module+"/examples/keyward", strings.TrimSpace(string(out)))
}

// TestTryIt runs the README's set-up commands as a newcomer would: the
// quickstart in an empty directory (twice: the second run reuses the key
// and the database), and checks that the test command is the one CI runs.
func TestTryIt(t *testing.T) {
	lines := section(t, "Try it")
	require.Equal(t, []string{"go run ./examples/quickstart", "go test ./..."}, lines, "the README's two set-up commands")

	dir := t.TempDir()
	bin := build(t, "./examples/quickstart", t.TempDir(), "quickstart")
	for run := 1; run <= 2; run++ {
		cmd := exec.Command(bin)
		cmd.Dir, cmd.Env = dir, newcomerEnv("")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "quickstart run %d: %s", run, out)
		if run == 1 {
			assert.Contains(t, string(out), "created crypto.key", "the first run makes the key")
		} else {
			assert.Contains(t, string(out), "using crypto.key", "the second run reuses the key")
		}
		assert.NotContains(t, string(out), "123-45-6789\"", "no plaintext in the raw row")
	}
	fi, err := os.Stat(filepath.Join(dir, "crypto.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "crypto.key mode")
	_, err = os.Stat(filepath.Join(dir, "quickstart.db"))
	assert.NoError(t, err, "the quickstart's SQLite database")

	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^\s*go test .*\./\.\.\.`, string(ci), ".ci/run runs the README's test command")
}

// TestCLIWalkthrough installs the keyward command as the README says and
// runs the README's CLI commands in an empty directory.
func TestCLIWalkthrough(t *testing.T) {
	lines := section(t, "CLI")
	require.NotEmpty(t, lines)
	bindir := t.TempDir()
	build(t, "./examples/keyward", bindir, "keyward")

	dir := t.TempDir()
	script := "set -euo pipefail\n" + strings.Join(lines, "\n") + "\n"
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir, cmd.Env = dir, newcomerEnv(bindir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "the README's CLI commands:\n%s\nstderr: %s", script, stderr.String())
	out := stdout.String()
	assert.Contains(t, out, "123-45-6789", "decrypt prints the value back")
	assert.Contains(t, out, `"key_id"`, "inspect prints the header")
}
