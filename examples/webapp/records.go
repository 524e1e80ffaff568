package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/cipher"
)

// pageSize is how many records a page of the list shows.
const pageSize = 10

// plainColumns are the columns every list shows: none is encrypted.
var plainColumns = []string{"id", "name", "created_by", "created_at"}

// recordView is a record as the list shows it: Email only when the user
// may decrypt it, otherwise nil and named in Masked with SSN and Notes,
// which the list never decrypts (reveal does, one record at a time).
type recordView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     *string   `json:"email"`
	Masked    []string  `json:"masked"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// mayDecrypt says, per encrypted column, whether the principal in ctx may
// decrypt it (asked of the policy, not audited: nothing is decrypted).
func (a *app) mayDecrypt(ctx context.Context) map[string]bool {
	m := make(map[string]bool, len(encryptedColumns))
	for _, c := range encryptedColumns {
		m[c] = a.may(ctx, access.ActionDecrypt, access.FieldResource(table, c))
	}
	return m
}

// listColumns are the columns a list selects for the principal in ctx: the
// e-mail address only if it may be decrypted, so that a list never asks
// for a decryption that would be refused.
func (a *app) listColumns(ctx context.Context) ([]string, bool) {
	if a.may(ctx, access.ActionDecrypt, access.FieldResource(table, "email")) {
		return append(plainColumns[:len(plainColumns):len(plainColumns)], "email"), true
	}
	return plainColumns, false
}

func views(recs []Record, withEmail bool) []recordView {
	out := make([]recordView, 0, len(recs))
	for _, r := range recs {
		v := recordView{ID: r.ID.String(), Name: r.Name, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt,
			Masked: []string{"ssn", "notes"}}
		if withEmail {
			v.Email = &r.Email
		} else {
			v.Masked = append(v.Masked, "email")
		}
		out = append(out, v)
	}
	return out
}

type recordPage struct {
	Records []recordView `json:"records"`
	Page    int          `json:"page"`
	Pages   int          `json:"pages"`
	Total   int64        `json:"total"`
}

// listRecords lists a page of records, newest first (GET /api/records?page=N).
func (a *app) listRecords(_ http.ResponseWriter, r *http.Request) (any, error) {
	page := 1
	if s := r.URL.Query().Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1e6 {
			return nil, badRequest("page must be a positive number")
		}
		page = n
	}
	db := a.db.WithContext(r.Context())
	var total int64
	if err := db.Model(&Record{}).Count(&total).Error; err != nil {
		return nil, err
	}
	cols, withEmail := a.listColumns(r.Context())
	var recs []Record
	if err := db.Select(cols).Order("created_at desc, id").Limit(pageSize).Offset((page - 1) * pageSize).Find(&recs).Error; err != nil {
		return nil, err
	}
	return recordPage{Records: views(recs, withEmail), Page: page, Pages: int((total + pageSize - 1) / pageSize), Total: total}, nil
}

// recordInput is a new record as the form sends it.
type recordInput struct {
	Name  string `json:"name"`
	SSN   string `json:"ssn"`
	Email string `json:"email"`
	Notes string `json:"notes"`
}

var ssnPattern = regexp.MustCompile(`^[0-9]{3}-[0-9]{2}-[0-9]{4}$`)

// check validates the input. Its messages name the field and the rule,
// never the value.
func (in *recordInput) check() error {
	in.Name, in.SSN, in.Email, in.Notes = strings.TrimSpace(in.Name), strings.TrimSpace(in.SSN), strings.TrimSpace(in.Email), strings.TrimSpace(in.Notes)
	switch n := utf8.RuneCountInString(in.Name); {
	case n == 0 || n > 100 || !utf8.ValidString(in.Name):
		return badRequest("name: 1 to 100 characters")
	case !ssnPattern.MatchString(in.SSN):
		return badRequest("ssn: the form 123-45-6789")
	case len(in.Email) > 254 || !validEmail(in.Email):
		return badRequest("email: an address like name@example.com")
	case utf8.RuneCountInString(in.Notes) > 2000 || !utf8.ValidString(in.Notes):
		return badRequest("notes: at most 2000 characters")
	}
	return nil
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}

// createRecord stores a new record (POST /api/records). gormcrypt encrypts
// the tagged fields as the signed-in user: a role without the encrypt
// permission is refused, and the refusal is audited.
func (a *app) createRecord(_ http.ResponseWriter, r *http.Request) (any, error) {
	var in recordInput
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	rec := Record{ID: uuid.New(), Name: in.Name, SSN: in.SSN, Email: in.Email, Notes: in.Notes, CreatedBy: principal(r).UserID}
	if err := a.db.WithContext(r.Context()).Create(&rec).Error; err != nil {
		return nil, err
	}
	return map[string]string{"id": rec.ID.String()}, nil
}

type searchRequest struct {
	Email string `json:"email"`
}

// searchRecords finds records by e-mail address through the blind index
// (POST /api/records/search: the address travels in the body, never in a
// URL). Computing the index is the derive action on the column, which the
// guard decides and audits.
func (a *app) searchRecords(_ http.ResponseWriter, r *http.Request) (any, error) {
	var req searchRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Email = strings.TrimSpace(req.Email); req.Email == "" || len(req.Email) > 254 {
		return nil, badRequest("email: 1 to 254 characters")
	}
	ctx := r.Context()
	if err := a.guard.Authorize(ctx, access.ActionDerive, access.FieldResource(table, "email")); err != nil {
		return nil, err
	}
	cols, withEmail := a.listColumns(ctx)
	var recs []Record
	if err := gormcrypt.Where(a.db.WithContext(ctx), "Email", req.Email).Select(cols).Order("created_at desc, id").
		Limit(100).Find(&recs).Error; err != nil {
		return nil, err
	}
	return recordPage{Records: views(recs, withEmail), Page: 1, Pages: 1, Total: int64(len(recs))}, nil
}

// recordID reads the {id} of the route.
func recordID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.UUID{}, badRequest("the record ID is not a UUID")
	}
	return id, nil
}

type revealed struct {
	SSN   string `json:"ssn"`
	Notes string `json:"notes"`
}

// revealRecord decrypts the SSN and notes of one record
// (POST /api/records/{id}/reveal). gormcrypt asks the guard, which decides
// as the signed-in user and audits the decision: a clerk is refused.
func (a *app) revealRecord(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := recordID(r)
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := a.db.WithContext(r.Context()).Select("id", "ssn", "notes").Where("id = ?", id).Take(&rec).Error; err != nil {
		return nil, err
	}
	return revealed{SSN: rec.SSN, Notes: rec.Notes}, nil
}

// storedColumn is one column of the stored row, next to what the user
// sees of it.
type storedColumn struct {
	Column string `json:"column"`
	Stored string `json:"stored"`
	// Encrypted columns: the token's key ID and algorithm.
	KeyID     uint32 `json:"key_id,omitempty"`
	Algorithm string `json:"algorithm,omitempty"`
	// Seen is what the signed-in user sees; Masked when the role may not
	// decrypt the column.
	Seen   string `json:"seen"`
	Masked bool   `json:"masked,omitempty"`
	Note   string `json:"note,omitempty"`
}

// storedRow is a record's row as the database holds it.
type storedRow struct {
	ID        string
	Name      string
	SSN       string
	Email     string
	EmailIdx  []byte
	Notes     string
	CreatedBy string
	CreatedAt time.Time
}

// storedRecord shows a record's raw row next to what the user sees
// (GET /api/records/{id}/stored). The raw row is read with hand-written
// SQL, which gormcrypt leaves alone: it is what the database holds.
func (a *app) storedRecord(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := recordID(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	db := a.db.WithContext(ctx)
	var raw storedRow
	res := db.Raw("SELECT id, name, ssn, email, email_idx, notes, created_by, created_at FROM records WHERE id = ?", id.String()).Scan(&raw)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, gorm.ErrRecordNotFound
	}
	// What the user sees: the fields the role may decrypt, through GORM.
	may := a.mayDecrypt(ctx)
	cols := []string{"id"}
	for _, c := range encryptedColumns {
		if may[c] {
			cols = append(cols, c)
		}
	}
	var seen Record
	if err := db.Select(cols).Where("id = ?", id).Take(&seen).Error; err != nil {
		return nil, err
	}
	seenOf := map[string]string{"ssn": seen.SSN, "email": seen.Email, "notes": seen.Notes}
	out := []storedColumn{
		{Column: "id", Stored: raw.ID, Seen: raw.ID},
		{Column: "name", Stored: raw.Name, Seen: raw.Name, Note: "not encrypted"},
	}
	for _, c := range encryptedColumns {
		tok := map[string]string{"ssn": raw.SSN, "email": raw.Email, "notes": raw.Notes}[c]
		col := storedColumn{Column: c, Stored: tok, Seen: seenOf[c], Masked: !may[c]}
		if h, err := cipher.ParseHeader(tok); err == nil {
			col.KeyID, col.Algorithm = h.KeyID, h.Algorithm.String()
		}
		if col.Masked {
			col.Seen = ""
		}
		out = append(out, col)
		if c == "email" {
			out = append(out, storedColumn{Column: "email_idx", Stored: hex.EncodeToString(raw.EmailIdx),
				Seen: "(not shown)", Note: blindNote(raw.EmailIdx)})
		}
	}
	out = append(out,
		storedColumn{Column: "created_by", Stored: raw.CreatedBy, Seen: raw.CreatedBy},
		storedColumn{Column: "created_at", Stored: raw.CreatedAt.UTC().Format(time.RFC3339), Seen: raw.CreatedAt.UTC().Format(time.RFC3339)})
	return map[string]any{"id": raw.ID, "columns": out}, nil
}

// blindNote explains a blind index: the index key's ID, then a truncated
// HMAC of the normalized address.
func blindNote(idx []byte) string {
	if len(idx) < 4 {
		return "blind index"
	}
	id := binary.BigEndian.Uint32(idx)
	return fmt.Sprintf("blind index: key ID %d, then %d bits of HMAC-SHA256 of the lower-cased address", id, 8*(len(idx)-4))
}
