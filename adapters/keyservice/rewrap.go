package keyservice

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward/internal/dekaad"
	"github.com/keyward/keyward/keyring"
)

// rewrapConflicts is how many times RewrapKeyring starts over when another
// process changed the keyset meanwhile.
const rewrapConflicts = 5

// RewrapKeyring moves every data key of the keyring name in store that
// this Source wrapped to the service's current KEK (Rewrap), after the
// service's KEK changed (WithPreviousKeySources on the server), and saves
// the keyset (compare-and-swap; it starts over if another process changed
// it meanwhile). Data is not touched: the data keys stay the same, and
// keyrings that have them cached go on. It returns how many keys it
// rewrapped. Keys of other key sources are left to keyring.Keyring.Rewrap.
func (s *Source) RewrapKeyring(ctx context.Context, store keyring.Store, name string) (int, error) {
	for range rewrapConflicts {
		ks, err := store.Load(ctx, name)
		if err != nil {
			return 0, fmt.Errorf("keyservice: rewrap keyring %q: %w", name, err)
		}
		n := 0
		for i := range ks.Keys {
			k := &ks.Keys[i]
			if k.State == keyring.StateDestroyed || k.KEK != s.id || len(k.Wrapped) == 0 {
				continue
			}
			aad := dekaad.Append(nil, dekaad.Binding{Keyring: name, KeyID: k.ID, Purpose: string(k.Purpose), Algorithm: k.Algorithm.String()})
			w, err := s.Rewrap(ctx, k.Wrapped, aad)
			if err != nil {
				return 0, fmt.Errorf("keyservice: rewrap key ID %d of keyring %q: %w", k.ID, name, err)
			}
			k.Wrapped, k.Updated = w, time.Now().UTC()
			n++
		}
		if n == 0 {
			return 0, nil
		}
		err = store.Save(ctx, ks)
		if errors.Is(err, keyring.ErrConflict) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("keyservice: rewrap keyring %q: %w", name, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("keyservice: rewrap keyring %q: %w (%d times)", name, keyring.ErrConflict, rewrapConflicts)
}
