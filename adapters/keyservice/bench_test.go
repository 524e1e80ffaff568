package keyservice_test

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/internal/kmstest"
)

// BenchmarkUnwrap measures Unwrap calls over loopback with mutual TLS, with
// 1 and 64 concurrent clients (on one connection each, or 64 callers
// sharing one connection, as the goroutines of one application do), with
// the audit
// records going to a discarded logger or to a hash-chained audit file
// (fsync per record, shared by concurrent writers). It reports the latency
// percentiles (p50-ns, p99-ns) and the throughput (unwraps/s).
func BenchmarkUnwrap(b *testing.B) {
	for _, audit := range []bool{false, true} {
		name := "audit=none"
		if audit {
			name = "audit=file"
		}
		b.Run(name, func(b *testing.B) {
			svc := startService(b, serviceConfig{audit: audit, opts: []keyservice.ServerOption{keyservice.WithRateLimit(1e9, 1e9)}})
			aad := dekAAD("bench", 1)
			for _, shape := range []struct{ clients, conns int }{{1, 1}, {64, 64}, {64, 1}} {
				clients := shape.clients
				b.Run("clients="+strconv.Itoa(clients)+"/conns="+strconv.Itoa(shape.conns), func(b *testing.B) {
					srcs := make([]*keyservice.Source, shape.conns)
					for i := range srcs {
						srcs[i] = svc.client(b, billing)
					}
					w, err := srcs[0].Wrap(ctx, randomKey(b), aad)
					if err != nil {
						b.Fatal(err)
					}
					for _, s := range srcs { // connect and warm up
						if _, err := s.Unwrap(ctx, w, aad); err != nil {
							b.Fatal(err)
						}
					}
					var next atomic.Int64
					lat := make([][]time.Duration, clients)
					var wg sync.WaitGroup
					b.ResetTimer()
					start := time.Now()
					for i := range clients {
						s := srcs[i%len(srcs)]
						wg.Go(func() {
							for next.Add(1) <= int64(b.N) {
								t0 := time.Now()
								if _, err := s.Unwrap(ctx, w, aad); err != nil {
									b.Error(err)
									return
								}
								lat[i] = append(lat[i], time.Since(t0))
							}
						})
					}
					wg.Wait()
					elapsed := time.Since(start)
					b.StopTimer()
					all := slices.Concat(lat...)
					slices.Sort(all)
					if len(all) > 0 {
						b.ReportMetric(float64(all[len(all)/2].Nanoseconds()), "p50-ns")
						b.ReportMetric(float64(all[min(len(all)-1, len(all)*99/100)].Nanoseconds()), "p99-ns")
						b.ReportMetric(float64(len(all))/elapsed.Seconds(), "unwraps/s")
					}
				})
			}
		})
	}
}

// BenchmarkKeyring puts a warm keyring over the key service (loopback,
// mutual TLS) next to one over a file key, 64-byte Encrypt and Decrypt
// interleaved in one run; "ratio" is key service over file key. With the
// data key cached the service is out of the hot path.
func BenchmarkKeyring(b *testing.B) {
	svc := startService(b, serviceConfig{})
	kmstest.BenchKeyring(b, svc.client(b, billing))
}
