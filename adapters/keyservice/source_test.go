package keyservice_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/internal/keysourcetest"
	"github.com/keyward/keyward/keyring"
)

// TestConformance runs the KeySource conformance suite over two key
// services with two KEKs, each started in-process with mutual TLS.
func TestConformance(t *testing.T) {
	ca := newCA(t, "conformance CA")
	keysourcetest.Run(t, func(t *testing.T) (a, b keyring.KeySource) {
		sa := startService(t, serviceConfig{ca: ca, name: "keys-a.test"})
		sb := startService(t, serviceConfig{ca: ca, name: "keys-b.test"})
		return sa.client(t, billing, keyservice.WithKeyring("default")), sb.client(t, billing, keyservice.WithKeyring("default"))
	})
}

func TestKeyringRoundTrip(t *testing.T) {
	svc := startService(t, serviceConfig{audit: true})
	src := svc.client(t, billing)
	assert.Equal(t, "keyservice:keys.test", src.ID(), "ID names the service")

	store := keyring.NewMemoryStore()
	for _, name := range []string{"default", "pii"} {
		t.Run(name, func(t *testing.T) {
			kr, err := keyring.New(ctx, name, src, store)
			require.NoError(t, err, "keyring.New(%q) over the key service", name)
			defer kr.Close()
			tok, err := kr.EncryptString(ctx, "123-45-6789")
			require.NoError(t, err)
			// Another process: a keyring over the same store, cold cache.
			kr2, err := keyring.New(ctx, name, svc.client(t, billing), store)
			require.NoError(t, err)
			defer kr2.Close()
			got, err := kr2.DecryptString(ctx, tok)
			require.NoError(t, err)
			assert.Equal(t, "123-45-6789", got, "DecryptString(EncryptString(x)) in a second keyring")
		})
	}
	// Every call was audited as allowed, with the keyring as resource.
	recs := svc.records(t)
	require.NotEmpty(t, recs)
	for _, r := range recs {
		assert.Equal(t, billing, r.User, "audit record %+v: user", r)
		assert.Equal(t, "allow", r.Decision, "audit record %+v: decision", r)
		assert.Contains(t, []string{"keyring:default", "keyring:pii"}, r.Resource, "audit record %+v: resource", r)
		assert.Contains(t, []string{"encrypt", "decrypt"}, r.Action, "audit record %+v: action", r)
	}
}

// TestKeyringBinding checks that the service binds a wrapped key to the
// keyring the request names: a principal allowed to unwrap one keyring's
// keys cannot get another keyring's key by naming its own.
func TestKeyringBinding(t *testing.T) {
	svc := startService(t, serviceConfig{})
	w, err := svc.client(t, billing).Wrap(ctx, randomKey(t), dekAAD("payroll", 7))
	require.NoError(t, err)
	// reporting may unwrap keys of "reports" only; it names "reports" with
	// the associated data of a payroll key.
	rep := svc.client(t, reporting, keyservice.WithKeyring("reports"))
	got, err := rep.Unwrap(ctx, w, []byte("other associated data"))
	assert.ErrorIs(t, err, keyring.ErrUnwrap, "Unwrap(payroll key as keyring reports) = %x", got)
	got, err = rep.Unwrap(ctx, w, dekAAD("payroll", 7))
	assert.ErrorIs(t, err, keyring.ErrKEKAccessDenied, "Unwrap(payroll key) by reporting = %x", got)
}

func TestBatch(t *testing.T) {
	svc := startService(t, serviceConfig{audit: true})
	src := svc.client(t, billing)
	deks := make([][]byte, 5)
	items := make([]keyservice.Item, len(deks))
	for i := range deks {
		deks[i] = randomKey(t)
		items[i] = keyservice.Item{Ref: "ref-" + strconv.Itoa(i), Key: deks[i], AAD: dekAAD("orders", uint32(i+1))}
	}
	wrapped, err := src.WrapBatch(ctx, items)
	require.NoError(t, err)
	require.Len(t, wrapped, len(items))

	// Unwrap them back, with two bad items in the middle: a tampered key and
	// a keyring the caller may not use. The others succeed.
	un := make([]keyservice.Item, len(items))
	for i, r := range wrapped {
		require.NoError(t, r.Err, "WrapBatch item %s", r.Ref)
		assert.Equal(t, items[i].Ref, r.Ref, "WrapBatch result %d: reference", i)
		un[i] = keyservice.Item{Ref: r.Ref, Key: r.Key, AAD: items[i].AAD}
	}
	un[1].Key = bytes.Clone(un[1].Key)
	un[1].Key[len(un[1].Key)-1] ^= 1
	rep := svc.client(t, reporting, keyservice.WithKeyring("reports"))
	results, err := src.UnwrapBatch(ctx, un)
	require.NoError(t, err)
	require.Len(t, results, len(un))
	for i, r := range results {
		assert.Equal(t, un[i].Ref, r.Ref, "UnwrapBatch result %d: reference", i)
		if i == 1 {
			assert.ErrorIs(t, r.Err, keyring.ErrUnwrap, "tampered item %s", r.Ref)
			assert.Nil(t, r.Key, "tampered item %s: key", r.Ref)
			continue
		}
		require.NoError(t, r.Err, "item %s", r.Ref)
		assert.Equal(t, deks[i], r.Key, "item %s: unwrapped key", r.Ref)
	}

	// A principal without permission gets a denial per item, audited.
	denied, err := rep.UnwrapBatch(ctx, un[:2])
	require.NoError(t, err)
	for _, r := range denied {
		assert.ErrorIs(t, r.Err, keyring.ErrKEKAccessDenied, "reporting's item %s", r.Ref)
	}
	n := 0
	for _, r := range svc.records(t) {
		if r.User == reporting {
			n++
			assert.Equal(t, "deny", r.Decision, "audit record %+v", r)
			assert.Equal(t, "no matching permission", r.Reason, "audit record %+v", r)
			assert.Equal(t, "keyring:orders", r.Resource, "audit record %+v", r)
		}
	}
	assert.Equal(t, 2, n, "audit records of reporting's two denied items")

	// Client-side limits.
	_, err = src.WrapBatch(ctx, nil)
	assert.Error(t, err, "WrapBatch(no items)")
	_, err = src.WrapBatch(ctx, make([]keyservice.Item, keyservice.MaxBatchItems+1))
	assert.Error(t, err, "WrapBatch(%d items)", keyservice.MaxBatchItems+1)
}

// TestRewrapAfterKEKChange moves a keyring from the service's old KEK to a
// new one: the service restarts with the new KEK current and the old one
// previous, RewrapKeyring rewraps every key, and a service without the old
// KEK then serves the keyring.
func TestRewrapAfterKEKChange(t *testing.T) {
	ca := newCA(t, "rewrap CA")
	oldKEK, newKEK := fileSource(t), fileSource(t)
	store := keyring.NewMemoryStore()

	svc := startService(t, serviceConfig{ca: ca, src: oldKEK})
	kr, err := keyring.New(ctx, "pii", svc.client(t, billing), store)
	require.NoError(t, err)
	tok, err := kr.EncryptString(ctx, "made under the old KEK")
	require.NoError(t, err)
	_, err = kr.Rotate(ctx)
	require.NoError(t, err)
	kr.Close()
	svc.stop(t)

	mid := startService(t, serviceConfig{ca: ca, src: newKEK, opts: []keyservice.ServerOption{keyservice.WithPreviousKeySources(oldKEK)}})
	// billing may not rewrap; rotator may.
	_, err = mid.client(t, billing).RewrapKeyring(ctx, store, "pii")
	assert.ErrorIs(t, err, keyring.ErrKEKAccessDenied, "RewrapKeyring by a principal without rewrap")
	n, err := mid.client(t, rotator).RewrapKeyring(ctx, store, "pii")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "RewrapKeyring: keys rewrapped (two versions)")
	mid.stop(t)

	after := startService(t, serviceConfig{ca: ca, src: newKEK})
	kr, err = keyring.New(ctx, "pii", after.client(t, billing), store)
	require.NoError(t, err, "keyring.New over a service without the old KEK")
	defer kr.Close()
	got, err := kr.DecryptString(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, "made under the old KEK", got)

	// A key the service no longer holds the KEK of is refused by name.
	w, err := keyservice.New([]string{after.addr}, keyservice.WithTLS(after.clientTLS(t, billing)), keyservice.WithServerName(after.name))
	require.NoError(t, err)
	defer w.Close()
	old := startService(t, serviceConfig{ca: ca, src: oldKEK})
	wrappedOld, err := old.client(t, billing).Wrap(ctx, randomKey(t), dekAAD("pii", 9))
	require.NoError(t, err)
	_, err = w.Unwrap(ctx, wrappedOld, dekAAD("pii", 9))
	assert.ErrorIs(t, err, keyring.ErrUnwrap, "Unwrap of a key under a KEK the service does not hold")
	assert.Contains(t, err.Error(), oldKEK.ID(), "the error names the KEK")
}

func TestNewErrors(t *testing.T) {
	svc := startService(t, serviceConfig{})
	good := keyservice.WithTLS(svc.clientTLS(t, billing))
	noCert := svc.clientTLS(t, billing)
	noCert.Certificates = nil
	for _, tc := range []struct {
		name  string
		addrs []string
		opts  []keyservice.Option
	}{
		{"NoAddress", nil, []keyservice.Option{good}},
		{"NoPort", []string{"keys.test"}, []keyservice.Option{good}},
		{"NoTLS", []string{svc.addr}, nil},
		{"TLSAndInsecure", []string{svc.addr}, []keyservice.Option{good, keyservice.WithInsecureLoopback()}},
		{"InsecureNotLoopback", []string{"10.0.0.1:7443"}, []keyservice.Option{keyservice.WithInsecureLoopback()}},
		{"DifferentHosts", []string{"a.test:1", "b.test:1"}, []keyservice.Option{good}},
		{"TLSTwice", []string{svc.addr}, []keyservice.Option{good, good}},
		{"NoClientCert", []string{svc.addr}, []keyservice.Option{keyservice.WithTLS(noCert)}},
		{"ExpiredCert", []string{svc.addr}, []keyservice.Option{keyservice.WithTLS(expiredTLS(t, svc))}},
		{"BadRetry", []string{svc.addr}, []keyservice.Option{good, keyservice.WithRetry(0, 1, 1)}},
		{"EmptyKeyring", []string{svc.addr}, []keyservice.Option{good, keyservice.WithKeyring("")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := keyservice.New(tc.addrs, tc.opts...)
			if !assert.Error(t, err, "New(%v) = %v, want an error", tc.addrs, src) {
				src.Close()
			}
		})
	}
}
