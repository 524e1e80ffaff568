package access

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// benchConfig builds a policy of 50 roles with 10 permissions (one action on
// one resource pattern) each: 500 permissions. Role i inherits role i-1
// (except every fifth role) and role i/2, so the top roles hold most of the
// policy through inheritance.
func benchConfig() Config {
	actions := benchActions()
	var cfg Config
	for i := range 50 {
		r := Role{Name: "role" + strconv.Itoa(i)}
		if i > 0 && i%5 != 0 {
			r.Inherits = append(r.Inherits, "role"+strconv.Itoa(i-1))
		}
		if i > 1 && i/2 != i-1 {
			r.Inherits = append(r.Inherits, "role"+strconv.Itoa(i/2))
		}
		for j := range 10 {
			var res string
			switch {
			case j < 5:
				res = fmt.Sprintf("field:table%d.col%d", i, j)
			case j < 7:
				res = fmt.Sprintf("field:schema%d_%d.*", i, j)
			case j < 9:
				res = fmt.Sprintf("keyring:ring%d_%d", i, j)
			case i%5 == 0:
				res = fmt.Sprintf("field:*.secret%d", i)
			default:
				res = fmt.Sprintf("keyring:tenant%d-*", i)
			}
			r.Permissions = append(r.Permissions, Permission{Actions: []string{actions[(i+j)%len(actions)]}, Resources: []string{res}})
		}
		cfg.Roles = append(cfg.Roles, r)
	}
	return cfg
}

func TestBenchPolicyShape(t *testing.T) {
	cfg := benchConfig()
	n := 0
	for _, r := range cfg.Roles {
		n += len(r.Permissions)
	}
	p := mustPolicy(t, cfg)
	if len(cfg.Roles) != 50 || n != 500 || !p.CheckAccess("role49", "role0") {
		t.Fatalf("bench policy has %d roles, %d permissions; role49 inherits role0 = %v", len(cfg.Roles), n, p.CheckAccess("role49", "role0"))
	}
	ctx := WithPrincipal(context.Background(), Principal{UserID: "u", Roles: []string{"role3", "role49"}})
	for _, c := range benchCases() {
		if got := p.Authorize(ctx, c.action, c.resource) == nil; got != c.allowed {
			t.Errorf("Authorize(%s, %s) allowed = %v, want %v", c.action, c.resource, got, c.allowed)
		}
	}
}

type benchCase struct {
	name, action, resource string
	allowed                bool
}

// benchActions are the six actions the benchmark policy cycles through
// (fixed, so that its shape does not change when an action is added).
func benchActions() []string {
	return []string{ActionEncrypt, ActionDecrypt, ActionRotate, ActionRewrap, ActionManage, ActionDerive}
}

func benchCases() []benchCase {
	actions := benchActions()
	return []benchCase{
		// role0's permission j=1 grants actions[1] on field:table0.col1,
		// reached by role49 through its ancestors.
		{"exact-inherited", actions[1], "field:table0.col1", true},
		{"prefix", actions[(45+5)%6], "field:schema45_5.users.ssn", true},
		{"inner-wildcard", actions[(20+9)%6], "field:orders.secret20", true},
		{"denied", ActionManage, "field:nothing.here", false},
	}
}

// BenchmarkAuthorize measures Policy.Authorize on the 50-role, 500-permission
// policy for a principal holding two roles.
func BenchmarkAuthorize(b *testing.B) {
	p := mustPolicy(b, benchConfig())
	ctx := WithPrincipal(context.Background(), Principal{UserID: "u", Roles: []string{"role3", "role49"}})
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if (p.Authorize(ctx, c.action, c.resource) == nil) != c.allowed {
					b.Fatal("wrong decision")
				}
			}
		})
	}
}

type discardSink struct{}

func (discardSink) WriteRecord(context.Context, Record) error { return nil }

// BenchmarkGuardAuthorize adds the Auditor (with a sink that drops records)
// to an allowed decision.
func BenchmarkGuardAuthorize(b *testing.B) {
	a, _ := NewAuditor(WithSink(discardSink{}))
	g, _ := NewGuard(mustPolicy(b, benchConfig()), a)
	ctx := WithPrincipal(context.Background(), Principal{UserID: "u", Roles: []string{"role3", "role49"}})
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Authorize(ctx, ActionDecrypt, "field:table0.col1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuditAppend measures AuditLog.WriteRecord throughput under each
// sync policy, from one goroutine and from 32 concurrent ones (where
// SyncEachRecord shares each fsync among the waiting writers).
func BenchmarkAuditAppend(b *testing.B) {
	policies := []struct {
		name string
		sp   SyncPolicy
	}{
		{"each-record", SyncEachRecord()},
		{"batch-100-10ms", SyncBatch(100, 10*time.Millisecond)},
		{"never", SyncNever()},
	}
	rec := testRecord(1)
	for _, p := range policies {
		for _, par := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/writers=%d", p.name, par), func(b *testing.B) {
				l, err := OpenAuditLog(context.Background(), b.TempDir(), testKey,
					WithSyncPolicy(p.sp), WithCheckpointFunc(func(Checkpoint) {}))
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				if par == 1 {
					for b.Loop() {
						if err := l.WriteRecord(context.Background(), rec); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					// RunParallel starts parallelism*GOMAXPROCS goroutines.
					b.SetParallelism(max(1, par/runtimeProcs()))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := l.WriteRecord(context.Background(), rec); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
