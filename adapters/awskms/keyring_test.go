package awskms_test

import (
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyward/keyward/adapters/awskms"
	"github.com/keyward/keyward/internal/awskmstest"
	"github.com/keyward/keyward/internal/kmstest"
	"github.com/keyward/keyward/keyring"
)

// refusedURL returns an http URL on which nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

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
				c := srv.Client(func(o *kms.Options) { o.BaseEndpoint = aws.String(refusedURL(t)) })
				s, err := awskms.New(ctx, c, src.KeyARN())
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
		}
	})
}
