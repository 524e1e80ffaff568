package layers

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
// import (directly). DESIGN.md: imports point down only.
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

// runtimeInternal reports whether an internal package is runtime code that
// library packages may use, rather than test support.
func runtimeInternal(name string) bool {
	switch name {
	case "internal/hook", "internal/instrument", "internal/dekaad":
		return true
	}
	return false
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
		if strings.HasPrefix(name, "examples/") || (strings.HasPrefix(name, "internal/") && !runtimeInternal(name)) {
			continue
		}
		if allowed, core := allowedImports[name]; core {
			for _, imp := range ours(p.Imports) {
				ok := false
				for _, a := range allowed {
					ok = ok || imp == a
				}
				if !ok {
					t.Errorf("%s imports %s; DESIGN.md allows only %v", name, imp, allowed)
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
			if strings.HasPrefix(dep, module+"/internal/") && !runtimeInternal(rel(dep)) {
				t.Errorf("library package %s depends on %s (internal test support)", name, rel(dep))
			}
		}
	}
}

func TestNoCgo(t *testing.T) {
	for _, p := range listPackages(t) {
		if len(p.CgoFiles) > 0 {
			t.Errorf("%s has cgo files %v", rel(p.ImportPath), p.CgoFiles)
		}
	}
	cmd := exec.Command("go", "build", "./...")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./...: %v\n%s", err, out)
	}
}

func TestEveryPackageHasDocGo(t *testing.T) {
	for _, p := range listPackages(t) {
		if _, err := os.Stat(filepath.Join(p.Dir, "doc.go")); err != nil {
			t.Errorf("%s has no doc.go", rel(p.ImportPath))
		}
	}
}
