package gormcrypt_test

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateDoc = flag.Bool("update", false, "rewrite the path table in doc.go from the matrix's rows")

// pathRow is one line of the path table: the paths it names, and what they
// do. A cell of the matrix belongs to the first row that matches it.
type pathRow struct {
	path    string
	outcome string
	match   func(k cellKey) bool
}

func oneOf(s string, set ...string) bool { return slices.Contains(set, s) }

var (
	insertOps = []string{"Create", "CreateInBatches", "Save (insert)", "FirstOrCreate", "Attrs+FirstOrCreate", "Assign+FirstOrCreate", "upsert UpdateAll (insert)"}
	updateOps = []string{"Save (update)", "Updates struct", "Updates struct value", "Update", "UpdateColumn", "Updates map", "UpdateColumns map", "upsert UpdateAll (update)"}
	finders   = []string{"First", "Take", "Last", "Find", "FindInBatches"}
	spelled   = "the column spelled as its field or column name, in any letter case, quoted or qualified by its table"
)

var writeRows = []pathRow{
	{"a condition that compares the column with a value when it has no blind index, as in Delete with Where or a map (and in every other statement)", outSearchable,
		func(k cellKey) bool { return strings.HasPrefix(k.op, "Delete") }},
	{"a clause.Set that assigns the column, whatever the destination", outUnsupported,
		func(k cellKey) bool { return k.op == "clause.Set" }},
	{"any write of the column through a struct of the table whose field has no serializer:keyward", outUnsupported,
		func(k cellKey) bool { return k.dest == "same-table plain struct" }},
	{"any write of the column without a model: Create, Update, Updates, UpdateColumn(s) on Table(name) with a map or value", outUnsupported,
		func(k cellKey) bool { return k.dest == "map with Table" || k.dest == "Table" }},
	{"Create, CreateInBatches, Save, FirstOrCreate (also with Attrs or Assign) and upserts with UpdateAll, of a model: pointer, slice, slice of pointers, or with Table(name)", outWrites,
		func(k cellKey) bool {
			return oneOf(k.op, insertOps...) && oneOf(k.dest, "pointer", "slice", "pointer slice", "Table+pointer")
		}},
	{"the same, of another struct of the table that declares the field with the same binding (TableName, primary key, serializer)", outWrites,
		func(k cellKey) bool { return oneOf(k.op, insertOps...) && k.dest == "same-table view" }},
	{"the same, of a struct value (not a pointer) of a model with a blind index", outUnsupported,
		func(k cellKey) bool { return oneOf(k.op, insertOps...) && k.dest == "value" }},
	{"Create of a map or a slice of maps with Model, " + spelled, outWrites,
		func(k cellKey) bool { return k.op == "Create" && oneOf(k.dest, "map with Model", "maps with Model") }},
	{"Updates with a struct that names another primary key than the model's, when values are bound to the key", outPrimaryKey,
		func(k cellKey) bool { return k.op == "Select+Updates struct of another row" && k.model == "bound" }},
	{"the same when values are bound to table and column only (auto-increment keys)", outWrites,
		func(k cellKey) bool { return k.op == "Select+Updates struct of another row" && k.model == "serial" }},
	{"Save, Update, UpdateColumn, Updates and UpdateColumns with a map or a struct, and upserts with UpdateAll, through the model (or Table(name) with it) or another struct of the table with the same binding, " + spelled, outWrites,
		func(k cellKey) bool {
			return oneOf(k.op, updateOps...) && oneOf(k.dest, "model", "Table+model", "same-table view")
		}},
	{"an upsert that updates the column from the inserted row (AssignmentColumns), " + spelled, outWrites,
		func(k cellKey) bool { return k.op == "upsert AssignmentColumns" }},
	{"an upsert that assigns a literal value to the column (Assignments)", outUnsupported,
		func(k cellKey) bool { return k.op == "upsert Assignments literal" }},
}

var readRows = []pathRow{
	{"a selection without encrypted columns", outEmpty,
		func(k cellKey) bool { return k.variant == "name" }},
	{"an SQL expression over the column in the selection, such as Select(\"upper(ssn)\")", outUnsupported,
		func(k cellKey) bool { return k.variant == "upper(ssn)" }},
	{"GORM's Scan, Row and Rows (then rows.Scan or db.ScanRows), whatever the destination, as they would give what is stored", outUnsupported,
		func(k cellKey) bool { return oneOf(k.op, "Scan", "Row", "Rows", "Rows+db.ScanRows") }},
	{"gormcrypt.Rows, then gormcrypt.ScanRows into a model", outDecrypts,
		func(k cellKey) bool { return k.op == "gormcrypt.Rows+ScanRows" && k.dest == "model" }},
	{"gormcrypt.Rows, then gormcrypt.ScanRows into a map", outUnsupported,
		func(k cellKey) bool { return k.op == "gormcrypt.Rows+ScanRows" }},
	{"hand-written SQL (Raw) scanned into a model", outDecrypts,
		func(k cellKey) bool { return k.op == "Raw+Scan" && k.dest == "model" }},
	{"hand-written SQL (Raw) scanned into anything else, which is the caller's", outStored,
		func(k cellKey) bool { return k.op == "Raw+Scan" }},
	{"a struct whose field for the column has no serializer:keyward, or that names another table", outUnsupported,
		func(k cellKey) bool {
			return strings.Contains(k.dest, "plain") || strings.Contains(k.dest, "without table")
		}},
	{"First, Take, Last, Find and FindInBatches into a model, a slice of models or of pointers, or another struct of the table with the same binding; through Model, Table(name) or both; any selection that includes the column, " + spelled, outDecrypts,
		func(k cellKey) bool {
			return oneOf(k.op, finders...) && oneOf(k.dest, "model", "model slice", "pointer slice", "same-table view", "same-table view slice")
		}},
	{"the same into a map or a slice of maps without a model (Table(name)), selecting the column but not the primary key, when values are bound to the key", outPrimaryKey,
		func(k cellKey) bool {
			return oneOf(k.op, finders...) && oneOf(k.dest, "map", "maps") && k.model == "bound" && k.source == "Table" && !oneOf(k.variant, "all", "*", "id, name, ssn")
		}},
	{"the same into a map or a slice of maps otherwise (with a model the key is added to the selection)", outDecrypts,
		func(k cellKey) bool { return oneOf(k.op, finders...) && oneOf(k.dest, "map", "maps") }},
	{"Find or Pluck of the column alone into strings, when values are bound to the primary key (use Select(...).Find into the model)", outUnsupported,
		func(k cellKey) bool {
			return oneOf(k.op, "Find", "Pluck ssn") && k.dest == "strings" && k.model == "bound"
		}},
	{"Find or Pluck of the column alone into strings, when values are bound to table and column only", outDecrypts,
		func(k cellKey) bool { return oneOf(k.op, "Find", "Pluck ssn") && k.dest == "strings" }},
}

// docWords are the outcomes as the documentation says them.
var docWords = map[string]string{
	outWrites:      "encrypts",
	outDecrypts:    "decrypts",
	outEmpty:       "as without gormcrypt",
	outUnsupported: "fails with ErrUnsupported",
	outPrimaryKey:  "fails with ErrPrimaryKey",
	outSearchable:  "fails with ErrNotSearchable",
	outStored:      "returns what is stored",
}

// pathSection is the text of the section of doc.go that the rows make.
func pathSection() string {
	var b strings.Builder
	b.WriteString(`// # Every GORM path
//
// What each path does with an encrypted column. The list is checked against
// a test matrix that runs every statement kind, destination, source and
// spelling of the column on SQLite and PostgreSQL, with and without the
// go-gorm tracing and dbresolver plugins, and checks that no plaintext
// reaches the table, the SQL log (also of dry runs) or a span, that no token
// is returned as data, and that a statement that fails wrote nothing.
// "Encrypts" and "decrypts" mean with the binding of the field that declares
// the column.
//
// Writing an encrypted column:
//
`)
	item := func(r pathRow) {
		text := r.path + ": " + docWords[r.outcome] + "."
		line := "//   -"
		for _, w := range strings.Fields(text) {
			if len(line)+1+len(w) > 78 {
				b.WriteString(line + "\n")
				line = "//    "
			}
			line += " " + w
		}
		b.WriteString(line + "\n")
	}
	for _, r := range writeRows {
		item(r)
	}
	b.WriteString("//\n// Reading it:\n//\n")
	for _, r := range readRows {
		item(r)
	}
	b.WriteString("//\n")
	return b.String()
}

// checkPathTable checks every cell's outcome against the first row that
// matches it, that every row matches a cell, and that doc.go holds the
// rows' text.
func checkPathTable(t *testing.T, writes, reads map[cellKey]string) {
	check := func(rows []pathRow, cells map[cellKey]string) {
		used := make([]bool, len(rows))
		for k, out := range cells {
			i := slices.IndexFunc(rows, func(r pathRow) bool { return r.match(k) })
			if !assert.GreaterOrEqual(t, i, 0, "cell %s (%s) matches no row of the path table", k, out) {
				continue
			}
			used[i] = true
			assert.Equal(t, rows[i].outcome, out, "cell %s: the path table says %q", k, rows[i].path)
		}
		for i, u := range used {
			assert.True(t, u, "row %q matches no cell of the matrix", rows[i].path)
		}
	}
	check(writeRows, writes)
	check(readRows, reads)

	doc, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	text := string(doc)
	start := strings.Index(text, "// # Every GORM path\n")
	require.GreaterOrEqual(t, start, 0, "doc.go has no section \"# Every GORM path\"")
	end := strings.Index(text[start+1:], "\n// # ")
	require.GreaterOrEqual(t, end, 0, "doc.go: no section after \"# Every GORM path\"")
	end += start + 2
	want := pathSection()
	if *updateDoc {
		require.NoError(t, os.WriteFile("doc.go", []byte(text[:start]+want+text[end:]), 0o644))
		return
	}
	assert.Equal(t, want, text[start:end], "doc.go's path table differs from the matrix's rows: go test -run TestPathMatrix -update")
}
