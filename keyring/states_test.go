package keyring_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/telemetry"
)

// storePairs returns, per kind of store, two handles on one store: what two
// processes sharing it have.
func storePairs() map[string]func(t *testing.T) (a, b keyring.Store) {
	return map[string]func(t *testing.T) (a, b keyring.Store){
		"memory": func(t *testing.T) (keyring.Store, keyring.Store) {
			s := keyring.NewMemoryStore()
			return s, s
		},
		"file": func(t *testing.T) (keyring.Store, keyring.Store) {
			p := filepath.Join(t.TempDir(), "keys.json")
			a, err := keyring.NewFileStore(p)
			require.NoError(t, err)
			b, err := keyring.NewFileStore(p)
			require.NoError(t, err)
			return a, b
		},
	}
}

func keyIDOf(t *testing.T, tok string) uint32 {
	t.Helper()
	h, err := cipher.ParseHeader(tok)
	require.NoError(t, err)
	return h.KeyID
}

// TestKeyStatesAcrossProcesses stands two keyrings on one store for two
// processes, A (the operator's) and B (an application instance), and walks
// a key from primary to destroyed.
func TestKeyStatesAcrossProcesses(t *testing.T) {
	for kind, pair := range storePairs() {
		t.Run(kind, func(t *testing.T) {
			storeA, storeB := pair(t)
			clk := newClock()
			src := newSource(t)
			opts := []keyring.Option{kmstest.WithClock(clk), keyring.WithCacheTTL(time.Hour)}
			a := open(t, "orders", src, storeA, opts...)
			b := open(t, "orders", src, storeB, opts...)
			old := a.Primary()
			require.Equal(t, old, b.Primary(), "both processes start on one primary")

			_, err := a.Rotate(ctx)
			require.NoError(t, err)
			// B has not reloaded the store: it still encrypts under the old
			// primary. The settle time covers this window.
			tokB, err := b.EncryptString(ctx, "written by B")
			require.NoError(t, err)
			require.Equal(t, old, keyIDOf(t, tokB), "B, not reloaded yet, encrypts under the old primary")
			require.ErrorIs(t, a.Disable(ctx, old), keyring.ErrTooSoon,
				"A disabling the old primary while B may still encrypt under it")

			// Within the settle time B reloads (its reload interval) and
			// moves to the new primary.
			require.NoError(t, b.Reload(ctx))
			tokB2, err := b.EncryptString(ctx, "written by B after its reload")
			require.NoError(t, err)
			require.Equal(t, a.Primary(), keyIDOf(t, tokB2), "B after its reload encrypts under the new primary")

			clk.Advance(keyring.DefaultSettleTime)
			require.NoError(t, a.Disable(ctx, old), "Disable once the settle time has passed since the rotation")
			// B learns it on reload and refuses the key at once.
			require.NoError(t, b.Reload(ctx))
			_, err = b.DecryptString(ctx, tokB)
			require.ErrorIs(t, err, keyring.ErrKeyDisabled, "B after reloading: token of the disabled key")

			// B dropped its cached copy: once the key is enabled again, B
			// unwraps it anew.
			before := src.unwraps.Load()
			require.NoError(t, a.Enable(ctx, old))
			require.NoError(t, b.Reload(ctx))
			got, err := b.DecryptString(ctx, tokB)
			require.NoError(t, err, "B: token of the re-enabled key")
			assert.Equal(t, "written by B", got)
			assert.Equal(t, before+1, src.unwraps.Load(), "B unwrapped the re-enabled key again: it had dropped its copy when it learned the key was disabled")

			require.NoError(t, a.Disable(ctx, old))
			require.ErrorIs(t, a.Destroy(ctx, old), keyring.ErrTooSoon, "A destroying a key disabled moments ago")
			clk.Advance(keyring.DefaultSettleTime)
			require.NoError(t, a.Destroy(ctx, old), "Destroy once disabled for the settle time")
			require.NoError(t, b.Reload(ctx))
			_, err = b.DecryptString(ctx, tokB)
			require.ErrorIs(t, err, keyring.ErrKeyDestroyed, "B after reloading: token of the destroyed key")
			got, err = b.DecryptString(ctx, tokB2)
			require.NoError(t, err, "B: token under the new primary")
			assert.Equal(t, "written by B after its reload", got)

			ks, err := storeB.Load(ctx, "orders")
			require.NoError(t, err)
			k, ok := ks.Lookup(old)
			require.True(t, ok)
			assert.False(t, k.Retired.IsZero(), "the stored key records when it stopped being the primary")
			assert.False(t, k.Disabled.IsZero(), "the stored key records when it was disabled")
			assert.Nil(t, k.Wrapped, "a destroyed key keeps no material")
		})
	}
}

// flakyStore fails Load while down is set.
type flakyStore struct {
	keyring.Store
	down atomic.Bool
}

var errStoreDown = errors.New("test: store unreachable")

func (f *flakyStore) Load(ctx context.Context, name string) (keyring.Keyset, error) {
	if f.down.Load() {
		return keyring.Keyset{}, errStoreDown
	}
	return f.Store.Load(ctx, name)
}

// TestStaleKeysetRefusesToEncrypt: a process that cannot read its store for
// the settle time stops encrypting (its primary may have been retired and
// disabled by then), and goes on under the current primary once it can.
func TestStaleKeysetRefusesToEncrypt(t *testing.T) {
	clk := newClock()
	src := newSource(t)
	store := keyring.NewMemoryStore()
	a := open(t, "orders", src, store)
	flaky := &flakyStore{Store: store}
	b := open(t, "orders", src, flaky, kmstest.WithClock(clk), keyring.WithCacheTTL(time.Hour))
	tok, err := b.EncryptString(ctx, "v")
	require.NoError(t, err)
	_, err = a.Rotate(ctx)
	require.NoError(t, err)

	flaky.down.Store(true)
	clk.Advance(keyring.DefaultSettleTime)
	_, err = b.EncryptString(ctx, "w")
	require.ErrorIs(t, err, keyring.ErrKeysetStale, "Encrypt after the store was unreadable for the settle time")
	assert.ErrorIs(t, err, errStoreDown, "the error says why")
	got, err := b.DecryptString(ctx, tok)
	require.NoError(t, err, "Decrypt goes on")
	assert.Equal(t, "v", got)

	flaky.down.Store(false)
	tok2, err := b.EncryptString(ctx, "w")
	require.NoError(t, err, "Encrypt once the store is readable again")
	assert.Equal(t, a.Primary(), keyIDOf(t, tok2), "B encrypts under the primary A made meanwhile")
}

// recordSink keeps audit records.
type recordSink struct {
	mu   sync.Mutex
	recs []access.Record
}

func (s *recordSink) WriteRecord(_ context.Context, r access.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, r)
	return nil
}

func (s *recordSink) find(action string) []access.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []access.Record
	for _, r := range s.recs {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// TestDestroyForceIsAudited: Force overrides the settle time and the usage
// check, only for a principal granted ActionForce, and the Guard audits the
// override as a decision of its own; the span says so too.
func TestDestroyForceIsAudited(t *testing.T) {
	policy, err := access.NewPolicy(access.Config{Roles: []access.Role{
		{Name: "operator", Permissions: []access.Permission{{
			Actions:   []string{access.ActionEncrypt, access.ActionDecrypt, access.ActionRotate, access.ActionManage},
			Resources: []string{"keyring:*"},
		}}},
		{Name: "admin", Inherits: []string{"operator"}, Permissions: []access.Permission{{
			Actions: []string{access.ActionForce}, Resources: []string{"keyring:*"},
		}}},
	}})
	require.NoError(t, err)
	sink := &recordSink{}
	auditor, err := access.NewAuditor(access.WithSink(sink))
	require.NoError(t, err)
	guard, err := access.NewGuard(policy, auditor)
	require.NoError(t, err)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	clk := newClock()
	store := keyring.NewMemoryStore()
	src := newSource(t)
	operator := access.WithPrincipal(ctx, access.Principal{UserID: "olga", Roles: []string{"operator"}})
	admin := access.WithPrincipal(ctx, access.Principal{UserID: "ada", Roles: []string{"admin"}})
	kr, err := keyring.New(operator, "default", src, store, kmstest.WithClock(clk), keyring.WithAuthorizer(guard),
		keyring.WithTelemetry(telemetry.WithTracerProvider(tp)))
	require.NoError(t, err)
	t.Cleanup(func() { kr.Close() })
	first := kr.Primary()
	kr.Close()
	kr, err = keyring.New(operator, "default", src, store, kmstest.WithClock(clk), keyring.WithAuthorizer(guard),
		keyring.WithTelemetry(telemetry.WithTracerProvider(tp)), keyring.WithUsageChecker(usage{first: true}))
	require.NoError(t, err)
	t.Cleanup(func() { kr.Close() })

	_, err = kr.Rotate(operator)
	require.NoError(t, err)
	clk.Advance(keyring.DefaultSettleTime)
	require.NoError(t, kr.Disable(operator, first))

	require.ErrorIs(t, kr.Destroy(operator, first), keyring.ErrTooSoon, "Destroy right after Disable")
	require.ErrorIs(t, kr.Destroy(operator, first, keyring.Force()), access.ErrAccessDenied,
		"Destroy with Force by a principal without the force permission")
	require.NoError(t, kr.Destroy(admin, first, keyring.Force()),
		"Destroy with Force of a key disabled moments ago and still in use")
	ks, err := store.Load(ctx, "default")
	require.NoError(t, err)
	k, _ := ks.Lookup(first)
	assert.Equal(t, keyring.StateDestroyed, k.State, "stored state after a forced Destroy")

	forced := sink.find(access.ActionForce)
	require.Len(t, forced, 2, "audit records of the force action: %+v", forced)
	assert.Equal(t, "olga", forced[0].UserID)
	assert.Equal(t, access.DecisionDeny, forced[0].Decision, "the operator's override")
	assert.Equal(t, "ada", forced[1].UserID)
	assert.Equal(t, access.DecisionAllow, forced[1].Decision, "the admin's override")
	assert.Equal(t, access.KeyringResource("default"), forced[1].Resource)

	marked := spanOf(spans.Ended(), keyring.AttrForced)
	require.Len(t, marked, 2, "spans marked forced: the refused and the done Destroy")
	for _, s := range marked {
		assert.Equal(t, telemetry.ActionDestroy.SpanName(), s.Name(), "span marked forced")
	}
}

// spanOf returns the spans that carry attribute key set to true.
func spanOf(spans []sdktrace.ReadOnlySpan, key attribute.Key) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		for _, a := range s.Attributes() {
			if a.Key == key && a.Value.AsBool() {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestRewrapRequiresTheNewKEK walks a fleet's KEK migration: processes on
// the new KEK (with the old one as previous) cannot change the keyset until
// Rewrap moves it, and after Rewrap a process still on the old KEK cannot
// change it either, so no key is ever wrapped by a KEK the fleet has left.
func TestRewrapRequiresTheNewKEK(t *testing.T) {
	store := keyring.NewMemoryStore()
	oldKEK, newKEK := newSource(t), newSource(t)
	clk := newClock()
	old := open(t, "default", oldKEK, store, kmstest.WithClock(clk))
	tok, err := old.EncryptString(ctx, "v")
	require.NoError(t, err)
	ks, err := store.Load(ctx, "default")
	require.NoError(t, err)
	require.Equal(t, oldKEK.ID(), ks.KEK, "a new keyset requires the KEK that made it")

	// Step 2: the fleet moves to the new KEK, the old one as previous. Such
	// a process reads everything but does not write yet: a key wrapped by
	// the new KEK now would be unreadable to the processes not moved yet.
	mig := open(t, "default", newKEK, store, keyring.WithPreviousKeySources(oldKEK), kmstest.WithClock(clk))
	got, err := mig.DecryptString(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, "v", got)
	_, err = mig.Rotate(ctx)
	require.ErrorIs(t, err, keyring.ErrStaleKEK, "Rotate on the new KEK before Rewrap")

	// Step 3: once every process has the new KEK, Rewrap moves the keyset.
	n, err := mig.Rewrap(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "keys rewrapped")
	ks, err = store.Load(ctx, "default")
	require.NoError(t, err)
	require.Equal(t, newKEK.ID(), ks.KEK, "after Rewrap the keyset requires the new KEK")

	// A process still on the old KEK can change nothing.
	for name, f := range map[string]func() error{
		"Rotate":       func() error { _, err := old.Rotate(ctx); return err },
		"RotateDerive": func() error { _, err := old.RotateDerive(ctx); return err },
		"Disable":      func() error { return old.Disable(ctx, 12345) },
		"Rewrap":       func() error { _, err := old.Rewrap(ctx); return err },
	} {
		err := f()
		require.ErrorIs(t, err, keyring.ErrStaleKEK, "%s on the old KEK after Rewrap", name)
		assert.ErrorContains(t, err, newKEK.ID(), "%s: the error names the KEK the keyset requires", name)
	}
	ks, err = store.Load(ctx, "default")
	require.NoError(t, err)
	for _, k := range ks.Keys {
		assert.Equal(t, newKEK.ID(), k.KEK, "key %d", k.ID)
	}

	// The migrated processes write again, and one on the new KEK alone
	// reads everything.
	_, err = mig.Rotate(ctx)
	require.NoError(t, err, "Rotate on the new KEK after Rewrap")
	only := open(t, "default", newKEK, store)
	got, err = only.DecryptString(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, "v", got)
}

// TestLegacyKeysetWithoutKEK: a keyset stored before keysets recorded their
// KEK has no requirement until a Rewrap records one.
func TestLegacyKeysetWithoutKEK(t *testing.T) {
	store := keyring.NewMemoryStore()
	src := newSource(t)
	kr := open(t, "default", src, store)
	ks, err := store.Load(ctx, "default")
	require.NoError(t, err)
	ks.KEK = ""
	require.NoError(t, store.Save(ctx, ks))
	require.NoError(t, kr.Reload(ctx))
	_, err = kr.Rotate(ctx)
	require.NoError(t, err, "Rotate of a keyset without a recorded KEK")
	n, err := kr.Rewrap(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing to rewrap")
	ks, err = store.Load(ctx, "default")
	require.NoError(t, err)
	assert.Equal(t, src.ID(), ks.KEK, "Rewrap records the KEK")
}

// TestSettleTimeFollowsReloadInterval: without WithSettleTime the settle
// time is twice a reload interval longer than the default.
func TestSettleTimeFollowsReloadInterval(t *testing.T) {
	clk := newClock()
	kr := open(t, "default", newSource(t), keyring.NewMemoryStore(), kmstest.WithClock(clk),
		keyring.WithReloadInterval(5*time.Minute))
	first := kr.Primary()
	_, err := kr.Rotate(ctx)
	require.NoError(t, err)
	clk.Advance(10*time.Minute - time.Second)
	require.ErrorIs(t, kr.Disable(ctx, first), keyring.ErrTooSoon, "Disable before twice the 5m reload interval")
	clk.Advance(time.Second)
	require.NoError(t, kr.Disable(ctx, first), "Disable at twice the 5m reload interval")

	short := open(t, "other", newSource(t), keyring.NewMemoryStore(), kmstest.WithClock(clk),
		keyring.WithReloadInterval(time.Second), keyring.WithSettleTime(5*time.Second))
	first = short.Primary()
	_, err = short.Rotate(ctx)
	require.NoError(t, err)
	clk.Advance(5 * time.Second)
	require.NoError(t, short.Disable(ctx, first), "Disable after a configured settle time of 5s")
}
