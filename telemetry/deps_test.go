package telemetry

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the layering of the design: telemetry is a leaf
// (nothing else of this module but internal/hook, which imports
// nothing of ours), uses the OpenTelemetry API only (no SDK,
// no exporter), and no cloud SDK, GORM or database driver; telemetry/anomaly
// adds only telemetry and the OpenTelemetry SDK's trace package.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	deps := func(pkg string) []string {
		out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	forbidden := []string{"gorm.io/", "github.com/aws/", "cloud.google.com/", "google.golang.org/", "github.com/glebarez/", "github.com/lib/pq", "github.com/jackc/"}
	const hook = "github.com/keyward/keyward/internal/hook"
	for _, d := range deps("github.com/keyward/keyward/telemetry") {
		if strings.HasPrefix(d, "github.com/keyward/keyward/") && d != "github.com/keyward/keyward/telemetry" && d != hook {
			t.Errorf("telemetry imports %s", d)
		}
		if strings.HasPrefix(d, "go.opentelemetry.io/otel/sdk") || strings.HasPrefix(d, "go.opentelemetry.io/otel/exporters") {
			t.Errorf("telemetry imports %s (API only)", d)
		}
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("telemetry imports %s", d)
			}
		}
	}
	for _, d := range deps("github.com/keyward/keyward/telemetry/anomaly") {
		if strings.HasPrefix(d, "github.com/keyward/keyward/") && d != "github.com/keyward/keyward/telemetry" && d != "github.com/keyward/keyward/telemetry/anomaly" && d != hook {
			t.Errorf("anomaly imports %s", d)
		}
		if strings.HasPrefix(d, "go.opentelemetry.io/otel/exporters") {
			t.Errorf("anomaly imports %s", d)
		}
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("anomaly imports %s", d)
			}
		}
	}
}
