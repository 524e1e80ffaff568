package gormcrypt_test

import (
	mrand "math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/keyward/keyward/internal/dbtest"
)

// The models of BenchmarkRatio: plain, naive (the hand-written serializer),
// keyward, and keyward with a blind index on one of the three fields, each
// with a client-assigned UUID key (bound into keyward's associated data)
// and with an auto-increment key (not bound: it is unknown before insert).
type (
	ratioPlainUUID struct {
		ID      uuid.UUID `gorm:"type:varchar(36);primaryKey"`
		A, B, C string
	}
	ratioNaiveUUID struct {
		ID uuid.UUID `gorm:"type:varchar(36);primaryKey"`
		A  string    `gorm:"serializer:kwbench_naive"`
		B  string    `gorm:"serializer:kwbench_naive"`
		C  string    `gorm:"serializer:kwbench_naive"`
	}
	ratioKeywardUUID struct {
		ID uuid.UUID `gorm:"type:varchar(36);primaryKey"`
		A  string    `gorm:"serializer:keyward"`
		B  string    `gorm:"serializer:keyward"`
		C  string    `gorm:"serializer:keyward"`
	}
	ratioBlindUUID struct {
		ID   uuid.UUID `gorm:"type:varchar(36);primaryKey"`
		A    string    `gorm:"serializer:keyward" keyward:"blind:AIdx"`
		AIdx []byte    `gorm:"index"`
		B    string    `gorm:"serializer:keyward"`
		C    string    `gorm:"serializer:keyward"`
	}
	ratioPlainAuto struct {
		ID      uint `gorm:"primaryKey;autoIncrement"`
		A, B, C string
	}
	ratioNaiveAuto struct {
		ID uint   `gorm:"primaryKey;autoIncrement"`
		A  string `gorm:"serializer:kwbench_naive"`
		B  string `gorm:"serializer:kwbench_naive"`
		C  string `gorm:"serializer:kwbench_naive"`
	}
	ratioKeywardAuto struct {
		ID uint   `gorm:"primaryKey;autoIncrement"`
		A  string `gorm:"serializer:keyward"`
		B  string `gorm:"serializer:keyward"`
		C  string `gorm:"serializer:keyward"`
	}
	ratioBlindAuto struct {
		ID   uint   `gorm:"primaryKey;autoIncrement"`
		A    string `gorm:"serializer:keyward" keyward:"blind:AIdx"`
		AIdx []byte `gorm:"index"`
		B    string `gorm:"serializer:keyward"`
		C    string `gorm:"serializer:keyward"`
	}
)

// ratioVariant is one model of BenchmarkRatio; rows returns a pointer to a
// fresh slice of benchRows rows with the benchmark's values.
type ratioVariant struct {
	name  string
	model any
	rows  func() any
}

// ratioRows returns the rows function of model T: set fills one row.
func ratioRows[T any](set func(r *T, i int, a, b, c string)) func() any {
	return func() any {
		rs := make([]T, benchRows)
		for i := range rs {
			set(&rs[i], i, benchValue(i, 0), benchValue(i, 1), benchValue(i, 2))
		}
		return &rs
	}
}

func ratioVariants(key string) []ratioVariant {
	if key == "uuid" {
		return []ratioVariant{
			{"plain", &ratioPlainUUID{}, ratioRows(func(r *ratioPlainUUID, _ int, a, b, c string) { *r = ratioPlainUUID{uuid.New(), a, b, c} })},
			{"naive", &ratioNaiveUUID{}, ratioRows(func(r *ratioNaiveUUID, _ int, a, b, c string) { *r = ratioNaiveUUID{uuid.New(), a, b, c} })},
			{"keyward", &ratioKeywardUUID{}, ratioRows(func(r *ratioKeywardUUID, _ int, a, b, c string) { *r = ratioKeywardUUID{uuid.New(), a, b, c} })},
			{"keyward-blind", &ratioBlindUUID{}, ratioRows(func(r *ratioBlindUUID, _ int, a, b, c string) {
				*r = ratioBlindUUID{ID: uuid.New(), A: a, B: b, C: c}
			})},
		}
	}
	return []ratioVariant{
		{"plain", &ratioPlainAuto{}, ratioRows(func(r *ratioPlainAuto, _ int, a, b, c string) { *r = ratioPlainAuto{0, a, b, c} })},
		{"naive", &ratioNaiveAuto{}, ratioRows(func(r *ratioNaiveAuto, _ int, a, b, c string) { *r = ratioNaiveAuto{0, a, b, c} })},
		{"keyward", &ratioKeywardAuto{}, ratioRows(func(r *ratioKeywardAuto, _ int, a, b, c string) { *r = ratioKeywardAuto{0, a, b, c} })},
		{"keyward-blind", &ratioBlindAuto{}, ratioRows(func(r *ratioBlindAuto, _ int, a, b, c string) { *r = ratioBlindAuto{A: a, B: b, C: c} })},
	}
}

// ratioBatch is the batch size of the Create rounds.
const ratioBatch = 100

// ratioValues is the number of encrypted values per statement (1000 rows x
// 3 fields), the divisor of allocs/value and B/value.
const ratioValues = benchRows * 3

// BenchmarkRatio measures plain GORM, the naive hand-written serializer
// (cached AES-256-GCM AEAD, random nonce, base64, no binding), keyward, and
// keyward with one blind index, on 1000 rows x 3 encrypted strings: Create
// in batches of 100 and Find of all rows, with a UUID key and with an
// auto-increment key, on SQLite and (with KEYWARD_PG_DSN) PostgreSQL. Each
// b.Loop iteration is one round of every variant in a shuffled order, all
// on one handle with gormcrypt registered (the plain and naive models have
// no keyward fields, so gormcrypt's callbacks pass them by). It reports per
// variant the median over rounds of its time divided by plain's time in the
// same round ("<variant>/plain"), plain's median milliseconds, and the
// median allocations and bytes per value (the statement's allocations over
// its 3000 values, the plain model's too, for comparison):
//
//	go test -run '^$' -bench Ratio -benchtime 20x -count 5 ./adapters/gormcrypt/
func BenchmarkRatio(b *testing.B) {
	registerNaive()
	dbtest.EachB(b, func(b *testing.B, db *gorm.DB) {
		_, enc := benchDBs(b, db)
		for _, key := range []string{"uuid", "auto"} {
			vs := ratioVariants(key)
			for _, v := range vs {
				if err := enc.AutoMigrate(v.model); err != nil {
					b.Fatal(err)
				}
			}
			clearTable := func(v ratioVariant) {
				if err := enc.Session(&gorm.Session{AllowGlobalUpdate: true}).Delete(v.model).Error; err != nil {
					b.Fatal(err)
				}
			}
			b.Run(key+"/Create", func(b *testing.B) {
				ratioRounds(b, vs, func(v ratioVariant) (time.Duration, runtime.MemStats) {
					rows := v.rows()
					d, m := measure(func() error { return enc.CreateInBatches(rows, ratioBatch).Error })
					clearTable(v)
					return d, m
				})
			})
			b.Run(key+"/Find", func(b *testing.B) {
				for _, v := range vs {
					if err := enc.CreateInBatches(v.rows(), ratioBatch).Error; err != nil {
						b.Fatal(err)
					}
				}
				ratioRounds(b, vs, func(v ratioVariant) (time.Duration, runtime.MemStats) {
					dest := reflect.New(reflect.SliceOf(reflect.TypeOf(v.model).Elem()))
					d, m := measure(func() error { return enc.Find(dest.Interface()).Error })
					if n := dest.Elem().Len(); n != benchRows {
						b.Fatalf("%s: Find read %d rows", v.name, n)
					}
					return d, m
				})
				for _, v := range vs {
					clearTable(v)
				}
			})
		}
	})
}

// measure runs f and returns its time and the allocations it made (Mallocs
// and TotalAlloc of the difference).
func measure(f func() error) (time.Duration, runtime.MemStats) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	err := f()
	d := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		panic(err)
	}
	return d, runtime.MemStats{Mallocs: after.Mallocs - before.Mallocs, TotalAlloc: after.TotalAlloc - before.TotalAlloc}
}

// ratioRounds runs one round of every variant per b.Loop iteration, in a
// shuffled order, and reports the medians.
func ratioRounds(b *testing.B, vs []ratioVariant, run func(ratioVariant) (time.Duration, runtime.MemStats)) {
	times := make([][]time.Duration, len(vs))
	allocs := make([][]float64, len(vs))
	bytes := make([][]float64, len(vs))
	for b.Loop() {
		for _, i := range mrand.Perm(len(vs)) {
			d, m := run(vs[i])
			times[i] = append(times[i], d)
			allocs[i] = append(allocs[i], float64(m.Mallocs)/ratioValues)
			bytes[i] = append(bytes[i], float64(m.TotalAlloc)/ratioValues)
		}
	}
	b.ReportMetric(float64(median(times[0]))/1e6, "plain-ms")
	for i, v := range vs {
		b.ReportMetric(medianF(allocs[i]), v.name+"-allocs/value")
		b.ReportMetric(medianF(bytes[i]), v.name+"-B/value")
		if i == 0 {
			continue
		}
		r := make([]float64, len(times[i]))
		for j := range times[i] {
			r[j] = float64(times[i][j]) / float64(times[0][j])
		}
		b.ReportMetric(medianF(r), v.name+"/plain")
	}
}
