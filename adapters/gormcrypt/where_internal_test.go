package gormcrypt

import (
	"reflect"
	"testing"

	"github.com/google/uuid"
)

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

// TestAppendKeyText checks the key text of data IDs: UUIDs in canonical
// form whether or not the value is addressable, other byte arrays in hex.
func TestAppendKeyText(t *testing.T) {
	u := uuid.MustParse("7d0e5a2c-1b3f-4c5d-8e9f-0a1b2c3d4e5f")
	row := struct{ ID uuid.UUID }{u}
	for _, tc := range []struct {
		v    reflect.Value
		want string
	}{
		{reflect.ValueOf(u), u.String()},
		{reflect.ValueOf(&row).Elem().Field(0), u.String()},
		{reflect.ValueOf([4]byte{0, 1, 0xab, 0xff}), "0001abff"},
		{reflect.ValueOf(int64(-42)), "-42"},
		{reflect.ValueOf(uint16(7)), "7"},
		{reflect.ValueOf("k-1"), "k-1"},
	} {
		if got := string(appendKeyText(nil, tc.v)); got != tc.want {
			t.Errorf("appendKeyText(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
