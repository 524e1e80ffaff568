package gcpkms_test

import (
	"testing"
	"time"

	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"

	"github.com/keyward/keyward/adapters/gcpkms"
	"github.com/keyward/keyward/internal/gcpkmstest"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
)

// fastRetry keeps the retries of tests quick.
var fastRetry = gcpkms.WithRetry(3, gax.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2})

func TestKeyringOverKMS(t *testing.T) {
	kmstest.Run(t, func(t *testing.T) kmstest.Remote {
		srv := gcpkmstest.New(t)
		name := srv.CreateKey(t, keyRing, "orders")
		src, err := gcpkms.New(srv.Client(t), name, fastRetry)
		if err != nil {
			t.Fatal(err)
		}
		return kmstest.Remote{
			Source:  src,
			Wraps:   func() int64 { return srv.Calls("Encrypt") },
			Unwraps: func() int64 { return srv.Calls("Decrypt") },
			Down: func() {
				srv.Inject(gcpkmstest.Fault{Code: codes.Unavailable, Times: gcpkmstest.Forever})
			},
			Up: srv.ClearFaults,
			Hang: kmstest.HangBy(func(started chan<- struct{}, block <-chan struct{}) {
				srv.Inject(gcpkmstest.Fault{Started: started, Block: block, Times: gcpkmstest.Forever})
			}, srv.ClearFaults),
			Throttle: func(n int) { srv.Inject(gcpkmstest.Fault{Code: codes.ResourceExhausted, Times: n}) },
			Unreachable: func(t *testing.T) keyring.KeySource {
				c := srv.Client(t, option.WithEndpoint(kmstest.RefusedAddr(t)))
				s, err := gcpkms.New(c, name, fastRetry)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
		}
	})
}
