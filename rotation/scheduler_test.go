package rotation_test

import (
	"context"
	"sync"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/keyward/telemetry"
)

// TestSchedulersRotateOnce: schedulers of several instances over one store
// check at the same moment, round after round; each due period ends with
// exactly one rotation.
func TestSchedulersRotateOnce(t *testing.T) {
	ctx := context.Background()
	store := keyring.NewMemoryStore()
	src, err := filekey.New(make([]byte, 32))
	require.NoError(t, err)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	const instances = 5
	scheds := make([]*rotation.Scheduler, instances)
	var kr0 *keyring.Keyring
	for i := range scheds {
		kr, err := keyring.New(ctx, "sched", src, store)
		require.NoError(t, err)
		t.Cleanup(func() { kr.Close() })
		if i == 0 {
			kr0 = kr
		}
		scheds[i], err = rotation.NewScheduler(kr, rotation.Policy{MaxEncryptions: 100},
			rotation.WithSchedulerTelemetry(telemetry.WithTracerProvider(tp)))
		require.NoError(t, err)
	}
	for round := range 3 {
		// The fleet used the primary 100 times.
		require.NoError(t, kr0.Reload(ctx))
		old := kr0.Primary()
		_, err := store.AddEncryptions(ctx, "sched", map[uint32]uint64{old: 100})
		require.NoError(t, err)
		decisions := make([]rotation.Decision, instances)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, s := range scheds {
			wg.Go(func() {
				<-start
				var err error
				decisions[i], err = s.Check(ctx)
				assert.NoError(t, err, "round %d, instance %d", round, i)
			})
		}
		close(start)
		wg.Wait()
		rotated := 0
		for _, d := range decisions {
			if d.Rotated {
				rotated++
			}
			// An instance that checked after the rotation judged the new
			// key, which is not due.
			assert.NotEqual(t, old, d.NewPrimary, "round %d: every instance ends with a new primary: %+v", round, d)
			assert.Equal(t, decisions[0].NewPrimary, d.NewPrimary, "round %d: one new primary: %+v", round, d)
		}
		assert.Equal(t, 1, rotated, "round %d: rotations among %d instances", round, instances)
		ks, err := store.Load(ctx, "sched")
		require.NoError(t, err)
		assert.Len(t, ks.Keys, round+2, "round %d: keys in the store", round)

		// Nothing is due until the new key is used.
		for i, s := range scheds {
			d, err := s.Check(ctx)
			require.NoError(t, err)
			assert.False(t, d.Due || d.Rotated, "round %d, instance %d after the rotation: %+v", round, i, d)
		}
	}
	checks := 0
	for _, sp := range rec.Ended() {
		if sp.Name() == rotation.SpanCheck {
			checks++
		}
	}
	assert.Equal(t, 3*2*instances, checks, "one %s span per check", rotation.SpanCheck)
}
