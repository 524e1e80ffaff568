package dbtest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/dbtest"
	"gorm.io/gorm"
)

func TestEach(t *testing.T) {
	var kinds []string
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		kinds = append(kinds, dbtest.Kind(db))
		if err := db.Exec("CREATE TABLE t (id integer primary key)").Error; err != nil {
			t.Fatal(err)
		}
		other := dbtest.Reopen(t, db, nil)
		var n int64
		if err := other.Table("t").Count(&n).Error; err != nil {
			t.Errorf("the second handle does not see the table: %v", err)
		}
	})
	if len(kinds) == 0 || kinds[0] != dbtest.SQLite {
		t.Errorf("Each ran on %v, want SQLite first", kinds)
	}
}

// TestCIWithoutDSNFails runs Each in a child process with CI set and no
// KEYWARD_PG_DSN: the PostgreSQL variant must fail, not skip.
func TestCIWithoutDSNFails(t *testing.T) {
	if os.Getenv("DBTEST_CHILD") == "1" {
		dbtest.Each(t, func(t *testing.T, db *gorm.DB) {})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCIWithoutDSNFails$", "-test.v")
	cmd.Env = append(os.Environ(), "DBTEST_CHILD=1", "CI=true", dbtest.EnvDSN+"=")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child passed:\n%s", out)
	}
	if !strings.Contains(string(out), "--- FAIL: TestCIWithoutDSNFails/postgres") || !strings.Contains(string(out), "--- PASS: TestCIWithoutDSNFails/sqlite") {
		t.Errorf("unexpected child output:\n%s", out)
	}
}
