package gormcrypt

import "testing"

func TestSimpleCond(t *testing.T) {
	for _, tc := range []struct {
		sql, table, col, op string
	}{
		{"email = ?", "", "email", "="},
		{" `email`=? ", "", "email", "="},
		{`"patients"."email" = ?`, "patients", "email", "="},
		{"patients.email IN ?", "patients", "email", "IN"},
		{"email in (?)", "", "email", "in"},
		{"email <> ?", "", "email", "<>"},
		{"ssn LIKE ?", "", "ssn", "LIKE"},
	} {
		m := simpleCond.FindStringSubmatch(tc.sql)
		if m == nil || m[1] != tc.table || m[2] != tc.col || m[3]+m[4] != tc.op {
			t.Errorf("simpleCond(%q) = %q, want table %q column %q op %q", tc.sql, m, tc.table, tc.col, tc.op)
		}
	}
	for _, sql := range []string{"email = ? AND name = ?", "lower(email) = ?", "email = 'x'", "email > ?", "email = ? OR 1=1", "emailin ?", "datalike ?"} {
		if simpleCond.MatchString(sql) {
			t.Errorf("simpleCond(%q) matched", sql)
		}
	}
}
