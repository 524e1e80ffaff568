package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

type fleetRow struct {
	ID int64  `gorm:"primaryKey;autoIncrement:false"`
	A  string `gorm:"serializer:keyward"`
	B  string `gorm:"serializer:keyward"`
	C  string `gorm:"serializer:keyward"`
}

func main() {
	ctx := context.Background()
	db, err := gorm.Open(postgres.Open("postgres://postgres@127.0.0.1:5432/keyward_test?sslmode=disable&search_path=kwprof"), &gorm.Config{Logger: logger.Discard})
	must(err)
	db.Exec("CREATE SCHEMA IF NOT EXISTS kwprof")
	key := make([]byte, 32)
	src, _ := filekey.New(key)
	store, _ := keyring.NewFileStore("/tmp/kwprof-keys.json")
	kr, err := keyring.New(ctx, "default", src, store)
	must(err)
	_, err = gormcrypt.Register(db, kr)
	must(err)
	n := 50000
	if os.Args[1] == "seed" {
		db.Exec("DROP TABLE IF EXISTS fleet_rows")
		must(gormcrypt.AutoMigrate(db, &fleetRow{}))
		rows := make([]fleetRow, 0, 2000)
		for i := 1; i <= n; i++ {
			rows = append(rows, fleetRow{ID: int64(i), A: fmt.Sprintf("a value of row %08d", i), B: fmt.Sprintf("b value of row %08d", i), C: fmt.Sprintf("c value of row %08d", i)})
			if len(rows) == 2000 {
				must(db.Create(&rows).Error)
				rows = rows[:0]
			}
		}
		db.Exec("VACUUM ANALYZE fleet_rows")
		return
	}
	_, err = kr.Rotate(ctx)
	must(err)
	f, _ := os.Create("/tmp/kwprof.cpu")
	pprof.StartCPUProfile(f)
	start := time.Now()
	targets, err := gormcrypt.RegistryTargets(ctx, db, kr)
	must(err)
	for _, t := range targets {
		job, err := gormcrypt.NewJob(ctx, t, gormcrypt.WithPartRows(5000))
		must(err)
		st, err := rotation.ReencryptJob(ctx, kr, job, rotation.WithWorkers(2), rotation.WithBatchSize(1000))
		must(err)
		fmt.Println(st.Rewritten, time.Since(start), float64(n)/time.Since(start).Seconds())
	}
	pprof.StopCPUProfile()
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func init() {
	go func() {}()
}
