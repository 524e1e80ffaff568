package gormcrypt_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/rotation"
	"gorm.io/gorm"
)

// BenchmarkReencrypt measures re-encryption of Patient rows (6 encrypted
// values each) after a rotation, in rows per second.
func BenchmarkReencrypt(b *testing.B) {
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		ctx := context.Background()
		_, kr := setup(b, db)
		const rows = 300
		ps := make([]*Patient, rows)
		for i := range ps {
			ps[i] = newPatient(fmt.Sprint(i))
		}
		if err := db.CreateInBatches(ps, 100).Error; err != nil {
			b.Fatal(err)
		}
		target, err := gormcrypt.NewTarget(db, &Patient{})
		if err != nil {
			b.Fatal(err)
		}
		done := 0
		for b.Loop() {
			b.StopTimer()
			if _, err := kr.Rotate(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			st, err := rotation.Reencrypt(ctx, kr, target)
			if err != nil || st.Rewritten != rows*6 {
				b.Fatalf("Reencrypt = %+v, %v", st, err)
			}
			done += rows
		}
		b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "rows/s")
	})
}
