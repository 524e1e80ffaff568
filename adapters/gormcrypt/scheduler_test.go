package gormcrypt_test

import (
	"context"
	"sync"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// TestSchedulersOnPostgres runs the schedulers of four instances, each with
// its own connections, over one PostgreSQL key store: when the fleet's
// encryption count makes the primary due, exactly one rotates, and all of
// them share the re-encryption of the registered tables.
func TestSchedulersOnPostgres(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, dbtest.Postgres, nil)
	src, err := filekey.New(make([]byte, 32))
	require.NoError(t, err)
	const instances = 4
	type instance struct {
		db    *gorm.DB
		kr    *keyring.Keyring
		sched *rotation.Scheduler
		store *gormcrypt.Store
	}
	var fleet []instance
	var want map[string]*Patient
	for i := range instances {
		h := dbtest.Reopen(t, db, nil)
		store, err := gormcrypt.NewStore(ctx, h)
		require.NoError(t, err)
		kr, err := keyring.New(ctx, "fleet", src, store)
		require.NoError(t, err)
		t.Cleanup(func() { kr.Close() })
		_, err = gormcrypt.Register(h, kr)
		require.NoError(t, err)
		if i == 0 {
			require.NoError(t, gormcrypt.AutoMigrate(h, &Company{}, &Patient{}, &Visit{}))
			want = seedPatients(t, h, 40)
		}
		targets, err := gormcrypt.RegistryTargets(ctx, h, kr)
		require.NoError(t, err)
		var jobs []rotation.Job
		for _, target := range targets {
			job, err := gormcrypt.NewJob(ctx, target, gormcrypt.WithPartRows(8))
			require.NoError(t, err)
			jobs = append(jobs, job)
		}
		sched, err := rotation.NewScheduler(kr, rotation.Policy{MaxEncryptions: 1000},
			rotation.WithJobs(jobs, rotation.WithBatchSize(4), rotation.WithWorkers(2)))
		require.NoError(t, err)
		fleet = append(fleet, instance{h, kr, sched, store})
	}
	old := fleet[0].kr.Primary()
	_, err = fleet[0].store.AddEncryptions(ctx, "fleet", map[uint32]uint64{old: 1000})
	require.NoError(t, err)

	decisions := make([]rotation.Decision, instances)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, in := range fleet {
		wg.Go(func() {
			<-start
			var err error
			decisions[i], err = in.sched.Check(ctx)
			assert.NoError(t, err, "instance %d", i)
		})
	}
	close(start)
	wg.Wait()
	rotated := 0
	var rewritten int64
	for i, d := range decisions {
		if d.Rotated {
			rotated++
		}
		assert.NotEqual(t, old, d.NewPrimary, "instance %d ends under a new primary", i)
		assert.Equal(t, decisions[0].NewPrimary, d.NewPrimary, "instance %d: one new primary", i)
		rewritten += d.Reencrypted.Rewritten
		assert.Zero(t, d.Reencrypted.Current+d.Reencrypted.Skipped, "instance %d did no value twice: %+v", i, d.Reencrypted)
	}
	assert.Equal(t, 1, rotated, "rotations among %d instances", instances)
	assert.Equal(t, int64(40*6), rewritten, "values the instances re-encrypted together")
	assert.Equal(t, 40*6, checkUnder(t, db, "patients", decisions[0].NewPrimary))
	checkPatients(t, fleet[0].db, want)

	// The next checks find nothing due and nothing to re-encrypt.
	for i, in := range fleet {
		d, err := in.sched.Check(ctx)
		require.NoError(t, err)
		assert.False(t, d.Due || d.Rotated || d.Reencrypted.Scanned > 0, "instance %d after the rotation: %+v", i, d)
	}
}
