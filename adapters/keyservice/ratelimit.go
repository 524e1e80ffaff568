package keyservice

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter keeps one token bucket per principal.
type limiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// maxBuckets bounds the buckets kept; past it, full buckets (principals idle
// long enough to be back at their burst) are dropped, which forgets
// nothing a limit needs.
const maxBuckets = 4096

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{rate: rate.Limit(perSecond), burst: burst, buckets: make(map[string]*rate.Limiter)}
}

// allow takes n tokens from principal's bucket, or none if it has fewer.
func (l *limiter) allow(principal string, n int) bool {
	l.mu.Lock()
	b, ok := l.buckets[principal]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			for p, old := range l.buckets {
				if old.Tokens() >= float64(l.burst) {
					delete(l.buckets, p)
				}
			}
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[principal] = b
	}
	l.mu.Unlock()
	return b.AllowN(time.Now(), n)
}
