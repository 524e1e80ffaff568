package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/rotation"
	"github.com/keyward/keyward/telemetry"
)

// reencryptBatch is the re-encryption's batch size: small, so that the
// progress bar moves on a demo-sized table.
const reencryptBatch = 20

// keyView is one key version as the keys page shows it.
type keyView struct {
	ID      uint32    `json:"id"`
	Purpose string    `json:"purpose"`
	State   string    `json:"state"`
	Primary bool      `json:"primary"`
	Created time.Time `json:"created"`
	// AgeSeconds is the key's age.
	AgeSeconds int64 `json:"age_seconds"`
	// Encryptions counts the values this process encrypted under the key.
	Encryptions uint64 `json:"encryptions"`
	// Stored counts the stored values whose tokens name the key.
	Stored int64 `json:"stored"`
}

type keysPage struct {
	Keyring   string    `json:"keyring"`
	Primary   uint32    `json:"primary"`
	Keys      []keyView `json:"keys"`
	Inventory inventory `json:"inventory"`
	Job       jobState  `json:"job"`
}

func (a *app) keyringResource() string { return access.KeyringResource(keyringName) }

// listKeys shows the keyring's versions and the inventory (GET /api/keys).
func (a *app) listKeys(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	if err := a.guard.Authorize(ctx, access.ActionManage, a.keyringResource()); err != nil {
		return nil, err
	}
	if err := a.kr.Reload(ctx); err != nil { // another instance may have rotated
		return nil, err
	}
	inv, err := takeInventory(ctx, a.db)
	if err != nil {
		return nil, err
	}
	page := keysPage{Keyring: a.kr.Name(), Primary: a.kr.Primary(), Inventory: inv}
	page.Job, _ = a.job.snapshot()
	for _, k := range a.kr.Keys() {
		page.Keys = append(page.Keys, keyView{ID: k.ID, Purpose: string(k.Purpose), State: string(k.State),
			Primary: k.ID == page.Primary, Created: k.Created, AgeSeconds: age(k.Created),
			Encryptions: a.kr.Encryptions(k.ID), Stored: inv.count(k.ID)})
	}
	sort.SliceStable(page.Keys, func(i, j int) bool { return page.Keys[i].Created.After(page.Keys[j].Created) })
	return page, nil
}

// rotateKey makes a new data key the primary (POST /api/keys/rotate).
// Existing values stay readable under their old key until re-encrypted.
func (a *app) rotateKey(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	if err := a.guard.Authorize(ctx, access.ActionRotate, a.keyringResource()); err != nil {
		return nil, err
	}
	id, err := a.kr.Rotate(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]uint32{"primary": id}, nil
}

// startReencrypt starts re-encrypting every stored value that is not under
// the primary key (POST /api/keys/reencrypt); progress is streamed by
// reencryptEvents. One job runs at a time.
func (a *app) startReencrypt(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	if err := a.guard.Authorize(ctx, access.ActionRotate, a.keyringResource()); err != nil {
		return nil, err
	}
	inv, err := takeInventory(ctx, a.db)
	if err != nil {
		return nil, err
	}
	target, err := gormcrypt.NewTarget(a.db, &Record{})
	if err != nil {
		return nil, err
	}
	// The job outlives the request: it runs under the app's context, as
	// the admin who started it.
	p := principal(r)
	jobCtx := access.WithPrincipal(a.ctx, access.Principal{UserID: p.UserID, Roles: p.Roles})
	st, err := a.job.start(inv.Total, a.kr.Primary(), func(progress func(rotation.Stats)) (rotation.Stats, error) {
		jobCtx, span := a.startSpan(jobCtx, "reencrypt "+keyringName)
		defer span.End()
		return rotation.Reencrypt(jobCtx, a.kr, target, rotation.WithBatchSize(reencryptBatch),
			rotation.WithProgress(progress), rotation.WithTelemetry(telemetry.WithTracerProvider(a.tp)))
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// reencryptEvents streams the re-encryption's progress as server-sent
// events (GET /api/keys/reencrypt/events): one "progress" event per change,
// until the job is done.
func (a *app) reencryptEvents(w http.ResponseWriter, r *http.Request) {
	setRoute(r)
	if err := a.guard.Authorize(r.Context(), access.ActionManage, a.keyringResource()); err != nil {
		a.api(func(http.ResponseWriter, *http.Request) (any, error) { return nil, err })(w, r)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for {
		st, changed := a.job.snapshot()
		b, _ := json.Marshal(st)
		if _, err := fmt.Fprintf(w, "event: progress\ndata: %s\n\n", b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil || !st.Running {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-a.ctx.Done():
			return
		}
	}
}

// jobState is the re-encryption job as the keys page shows it.
type jobState struct {
	Running   bool      `json:"running"`
	Done      bool      `json:"done"`
	Primary   uint32    `json:"primary"`
	Total     int64     `json:"total"`
	Scanned   int64     `json:"scanned"`
	Rewritten int64     `json:"rewritten"`
	Current   int64     `json:"current"`
	Skipped   int64     `json:"skipped"`
	Failed    int64     `json:"failed"`
	Error     string    `json:"error,omitempty"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
}

// reencryptJob runs one re-encryption at a time and tells watchers of
// every change: changed is closed and replaced each time the state moves.
type reencryptJob struct {
	mu      sync.Mutex
	state   jobState
	changed chan struct{}
	wg      sync.WaitGroup
}

func newReencryptJob() *reencryptJob { return &reencryptJob{changed: make(chan struct{})} }

// snapshot returns the state and a channel closed at the next change.
func (j *reencryptJob) snapshot() (jobState, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state, j.changed
}

func (j *reencryptJob) update(f func(*jobState)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f(&j.state)
	close(j.changed)
	j.changed = make(chan struct{})
}

// start runs run in the background unless a job is running already.
func (j *reencryptJob) start(total int64, primary uint32, run func(progress func(rotation.Stats)) (rotation.Stats, error)) (jobState, error) {
	j.mu.Lock()
	if j.state.Running {
		j.mu.Unlock()
		return jobState{}, fmt.Errorf("%w: a re-encryption is running", errConflict)
	}
	j.mu.Unlock()
	j.update(func(s *jobState) { *s = jobState{Running: true, Total: total, Primary: primary, Started: time.Now()} })
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		stats, err := run(func(st rotation.Stats) { j.update(func(s *jobState) { s.setStats(st) }) })
		j.update(func(s *jobState) {
			s.setStats(stats)
			s.Running, s.Done, s.Finished = false, err == nil, time.Now()
			if err != nil {
				s.Error = err.Error()
			}
		})
	}()
	st, _ := j.snapshot()
	return st, nil
}

func (s *jobState) setStats(st rotation.Stats) {
	s.Scanned, s.Rewritten, s.Current, s.Skipped, s.Failed = st.Scanned, st.Rewritten, st.Current, st.Skipped, st.Failed
}

// wait waits for a running job to end (the app's context stops it).
func (j *reencryptJob) wait() { j.wg.Wait() }
