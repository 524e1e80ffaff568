package layers

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/keyward/keyward"

type pkg struct {
	ImportPath string
	Dir        string
	Name       string
	Imports    []string
	Deps       []string
	CgoFiles   []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

// ours returns the module's packages among paths, relative to the module.
func ours(paths []string) []string {
	var r []string
	for _, p := range paths {
		if p == module || strings.HasPrefix(p, module+"/") {
			r = append(r, rel(p))
		}
	}
	return r
}

// allowedImports lists, for each core package, the packages of ours it may
// import (directly). Imports point down only.
var allowedImports = map[string][]string{
	"cipher":            {},
	"access":            {},
	"telemetry":         {"internal/hook"},
	"telemetry/anomaly": {"telemetry"},
	"keyring":           {"cipher", "access", "telemetry", "internal/instrument", "internal/hook", "internal/dekaad"},
	"rotation":          {"keyring", "telemetry", "cipher", "access", "internal/instrument"},

	// Runtime code shared by keyward's own packages (not test support):
	// each sits just below the packages that use it.
	"internal/hook":       {},
	"internal/instrument": {"telemetry", "internal/hook"},
	"internal/dekaad":     {"cipher"},
}

// runtimeInternal lists the internal packages that hold runtime code shared
// by keyward's packages. Library packages may import them; every other
// internal package is test support and may not be imported by library code.
var runtimeInternal = map[string]bool{
	"internal/fsutil":     true,
	"internal/hook":       true,
	"internal/instrument": true,
	"internal/dekaad":     true,
}

// vendor SDK module prefixes, and the one adapter allowed to use each.
var vendors = map[string]string{
	"github.com/aws/":                  "adapters/awskms",
	"cloud.google.com/go/kms":          "adapters/gcpkms",
	"gorm.io/":                         "adapters/gormcrypt",
	"github.com/glebarez/":             "adapters/gormcrypt",
	"github.com/jackc/":                "adapters/gormcrypt",
	"github.com/nsmithuk/local-kms":    "",
	"go.opentelemetry.io/otel/sdk":     "telemetry/anomaly",
	"google.golang.org/api/":           "adapters/gcpkms",
	"modernc.org/sqlite":               "adapters/gormcrypt",
	"go.opentelemetry.io/otel/exporte": "",
}

func TestLayers(t *testing.T) {
	for _, p := range listPackages(t) {
		name := rel(p.ImportPath)
		if strings.HasPrefix(name, "examples/") {
			// An example can be copied out of the repository whole: its
			// program imports only public packages.
			for _, imp := range ours(p.Imports) {
				assert.False(t, imp == "internal" || strings.HasPrefix(imp, "internal/") || strings.Contains(imp, "/internal/"),
					"example %s imports %s; examples import only public packages", name, imp)
			}
			continue
		}
		if strings.HasPrefix(name, "internal/") && !runtimeInternal[name] {
			continue // test support; runtime internal packages are held to the library rules
		}
		if allowed, core := allowedImports[name]; core {
			for _, imp := range ours(p.Imports) {
				ok := runtimeInternal[imp]
				for _, a := range allowed {
					ok = ok || imp == a
				}
				if !ok {
					t.Errorf("%s imports %s; its layer allows only %v", name, imp, allowed)
				}
			}
		}
		for _, dep := range p.Deps {
			for prefix, owner := range vendors {
				if !strings.HasPrefix(dep, prefix) {
					continue
				}
				if owner == "" {
					t.Errorf("library package %s depends on %s, which only tests may use", name, dep)
				} else if name != owner && !strings.HasPrefix(name, owner+"/") {
					t.Errorf("%s depends on %s; only %s may", name, dep, owner)
				}
			}
			if strings.HasPrefix(dep, module+"/internal/") && !runtimeInternal[rel(dep)] {
				t.Errorf("library package %s depends on %s (internal test support)", name, rel(dep))
			}
		}
	}
}

// cgoView is what TestNoCgo reads of a package under one CGO_ENABLED value.
type cgoView struct {
	ImportPath string
	Standard   bool
	GoFiles    []string
	CgoFiles   []string
	Imports    []string
	Error      *struct{ Err string }
	DepsErrors []*struct{ Err string }
}

// listDeps returns every package that the module's packages and their tests
// build from (go list -deps -test), keyed by import path, as the go command
// resolves them with CGO_ENABLED set to cgo.
func listDeps(t *testing.T, cgo string) map[string]cgoView {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-test", "-json=ImportPath,Standard,GoFiles,CgoFiles,Imports,Error,DepsErrors", "./...")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err, "CGO_ENABLED=%s go list -deps -test ./...", cgo)
	pkgs := make(map[string]cgoView)
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p cgoView
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err, "decoding go list output")
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// TestNoCgo keeps keyward pure Go: no package that keyward or its tests
// build from (outside the standard library, whose net and os/user have cgo
// variants) has cgo files or imports "C", none builds other files when cgo is
// off, and the whole graph resolves with CGO_ENABLED=0. With the files equal
// under both settings, "CGO_ENABLED=0 go build" compiles exactly what every
// test run compiles already, so this reads package metadata instead of
// building everything a second time.
func TestNoCgo(t *testing.T) {
	on, off := listDeps(t, "1"), listDeps(t, "0")
	require.Greater(t, len(on), 100, "go list -deps found too few packages to be the whole graph")
	require.Contains(t, on, module+"/keyring", "go list -deps did not list the module's own packages")
	for path, p := range on {
		if p.Standard {
			continue
		}
		assert.Empty(t, p.CgoFiles, "%s has cgo files with CGO_ENABLED=1; keyward must stay pure Go", path)
		assert.NotContains(t, p.Imports, "C", "%s imports \"C\"; keyward must stay pure Go", path)
		q, ok := off[path]
		if !assert.True(t, ok, "%s is in the CGO_ENABLED=1 graph but not in the CGO_ENABLED=0 one", path) {
			continue
		}
		assert.ElementsMatch(t, p.GoFiles, q.GoFiles, "%s builds other Go files with CGO_ENABLED=0 than with CGO_ENABLED=1", path)
	}
	for path, p := range off {
		if p.Error != nil {
			t.Errorf("%s does not resolve with CGO_ENABLED=0: %s", path, p.Error.Err)
		}
		for _, e := range p.DepsErrors {
			t.Errorf("%s has a dependency that does not resolve with CGO_ENABLED=0: %s", path, e.Err)
		}
	}
}

func TestEveryPackageHasDocGo(t *testing.T) {
	for _, p := range listPackages(t) {
		if _, err := os.Stat(filepath.Join(p.Dir, "doc.go")); err != nil {
			t.Errorf("%s has no doc.go", rel(p.ImportPath))
		}
	}
}
