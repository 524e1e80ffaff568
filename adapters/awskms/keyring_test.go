package awskms_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyward/keyward/adapters/awskms"
	"github.com/keyward/keyward/internal/awskmstest"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
)

func TestKeyringOverKMS(t *testing.T) {
	kmstest.Run(t, func(t *testing.T) kmstest.Remote {
		srv := awskmstest.New(t)
		src := newSource(t, srv)
		return kmstest.Remote{
			Source:  src,
			Wraps:   func() int64 { return srv.Calls("Encrypt") },
			Unwraps: func() int64 { return srv.Calls("Decrypt") },
			Down: func() {
				srv.Inject(awskmstest.Fault{Code: "KMSInternalException", Status: 500, Times: awskmstest.Forever})
			},
			Up: srv.ClearFaults,
			Hang: kmstest.HangBy(func(started chan<- struct{}, block <-chan struct{}) {
				srv.Inject(awskmstest.Fault{Started: started, Block: block, Times: awskmstest.Forever})
			}, srv.ClearFaults),
			Throttle: func(n int) { srv.Inject(awskmstest.Fault{Code: "ThrottlingException", Times: n}) },
			Unreachable: func(t *testing.T) keyring.KeySource {
				c := srv.Client(func(o *kms.Options) { o.BaseEndpoint = aws.String("http://" + kmstest.RefusedAddr(t)) })
				s, err := awskms.New(ctx, c, src.KeyARN())
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
		}
	})
}
