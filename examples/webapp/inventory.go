package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"slices"

	"gorm.io/gorm"

	"github.com/keyward/keyward/cipher"
)

// inventory counts the stored encrypted values of the records table by the
// key ID their tokens name. It reads the tokens' headers only: nothing is
// decrypted, and no key is needed.
//
// It is the example's own count over its one table; a registry of
// encrypted columns across an application would replace it.
type inventory struct {
	Total int64 `json:"total"`
	// ByKey lists the key IDs with their counts.
	ByKey []keyCount `json:"by_key"`
	// NotTokens counts non-empty values that are not tokens (legacy
	// plaintext, or damage).
	NotTokens int64 `json:"not_tokens"`
	// Indexes lists the blind indexes by the ID of the derive key they were
	// computed under (their first four bytes).
	Indexes []keyCount `json:"indexes"`
}

type keyCount struct {
	KeyID  uint32 `json:"key_id"`
	Values int64  `json:"values"`
}

// count is how many stored values and blind indexes name the key id.
func (inv inventory) count(id uint32) int64 {
	var n int64
	for _, k := range slices.Concat(inv.ByKey, inv.Indexes) {
		if k.KeyID == id {
			n += k.Values
		}
	}
	return n
}

// takeInventory scans the encrypted columns of every record with
// hand-written SQL (which gormcrypt leaves alone: it returns what is
// stored).
func takeInventory(ctx context.Context, db *gorm.DB) (inventory, error) {
	rows, err := db.WithContext(ctx).Raw("SELECT ssn, email, notes, email_idx FROM records").Rows()
	if err != nil {
		return inventory{}, err
	}
	defer rows.Close()
	counts, indexes := map[uint32]int64{}, map[uint32]int64{}
	var inv inventory
	for rows.Next() {
		var vals [3]sql.NullString
		var idx []byte
		if err := rows.Scan(&vals[0], &vals[1], &vals[2], &idx); err != nil {
			return inventory{}, err
		}
		if len(idx) >= 4 {
			indexes[binary.BigEndian.Uint32(idx)]++
		}
		for _, v := range vals {
			if !v.Valid || v.String == "" {
				continue
			}
			inv.Total++
			if id, ok := cipher.PeekKeyID(v.String); ok {
				counts[id]++
			} else {
				inv.NotTokens++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return inventory{}, err
	}
	inv.ByKey, inv.Indexes = keyCounts(counts), keyCounts(indexes)
	return inv, nil
}

// keyCounts lists counts by key ID, the largest first, then by key ID.
func keyCounts(m map[uint32]int64) []keyCount {
	out := []keyCount{}
	for id, n := range m {
		out = append(out, keyCount{KeyID: id, Values: n})
	}
	slices.SortFunc(out, func(x, y keyCount) int {
		return cmp.Or(cmp.Compare(y.Values, x.Values), cmp.Compare(x.KeyID, y.KeyID))
	})
	return out
}
