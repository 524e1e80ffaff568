package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
)

// tableList is the repeatable --table flag.
type tableList []string

func (t *tableList) String() string { return strings.Join(*t, ",") }

func (t *tableList) Set(s string) error {
	if s == "" {
		return errors.New("empty table name")
	}
	*t = append(*t, s)
	return nil
}

// lineEvery is how often reencrypt reports progress when stderr is not a
// terminal.
const lineEvery = 5 * time.Second

// tableWork is what reencrypt has to do in one table of one keyring.
type tableWork struct {
	table, keyring string
	primary        uint32
	columns        int
	values, todo   int64 // values, and values not under the primary
}

// runReencrypt re-encrypts the registered columns under their keyrings'
// primary keys, as a shared job that other processes may run at once.
func runReencrypt(e *env, args []string) error {
	fs := newFlags(e, "reencrypt")
	ff := addFleetFlags(fs, true, false)
	var tables tableList
	fs.Var(&tables, "table", "re-encrypt only `TABLE` (repeat for several; default: every registered table)")
	workers := fs.Int("workers", rotation.DefaultWorkers, "`N` batches at once in this process")
	batch := fs.Int("batch", 1000, "`N` rows per batch")
	dryRun := fs.Bool("dry-run", false, "only count the values to re-encrypt; change nothing")
	rate := fs.Float64("rate", 0, "at most about `ROWS/S` rows per second (0: no limit)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case *workers < 1 || *workers > 64:
		return usagef("--workers must be from 1 to 64")
	case *batch < 1 || *batch > 100000:
		return usagef("--batch must be from 1 to 100000")
	case *rate < 0:
		return usagef("--rate must not be negative")
	}

	// Ctrl-C (or SIGTERM) stops after the current batch; a second one
	// at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		fmt.Fprintln(e.stderr, "reencrypt: stopping after the current batch (again to stop at once)")
		close(stop)
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()

	fl, err := ff.open(ctx, *dryRun)
	if err != nil {
		return err
	}
	defer fl.close()
	if fl.db == nil {
		return usagef("reencrypt works on the column registry: give --db (or a database --store)")
	}
	work, err := plan(ctx, fl, tables)
	if err != nil {
		return err
	}
	var total int64
	for _, w := range work {
		total += w.todo
		fmt.Fprintf(e.stdout, "%s: %d of %d values not under key ID %d of keyring %s\n", w.table, w.todo, w.values, w.primary, w.keyring)
	}
	if *dryRun {
		fmt.Fprintf(e.stdout, "%d values to re-encrypt (dry run: nothing changed)\n", total)
		return nil
	}
	p := newProgress(e.stderr, total)
	defer p.finish()
	var done rotation.Stats
	for _, kw := range groupByKeyring(work) {
		st, err := reencryptKeyring(ctx, ff, fl, kw, *workers, *batch, *rate, stop, p)
		addUp(&done, st)
		if errors.Is(err, rotation.ErrStopped) || (err != nil && ctx.Err() != nil) {
			p.finish()
			return fmt.Errorf("stopped after %d values; run keyward reencrypt again to resume", done.Rewritten)
		}
		if err != nil {
			return err
		}
	}
	p.finish()
	fmt.Fprintf(e.stdout, "re-encrypted %d values (%d already current, %d changed meanwhile by the application)\n", done.Rewritten, done.Current, done.Skipped)
	return nil
}

// plan reads the registry and the inventory: what each table holds and
// how much of it is not under its keyring's primary.
func plan(ctx context.Context, fl *fleet, only []string) ([]tableWork, error) {
	cols, err := gormcrypt.Columns(ctx, fl.db)
	if err != nil {
		return nil, err
	}
	byTable := map[string]*tableWork{}
	var order []string
	primaries := map[string]uint32{}
	for _, c := range cols {
		if len(only) > 0 && !slices.Contains(only, c.Table) {
			continue
		}
		if _, ok := primaries[c.Keyring]; !ok {
			ks, err := fl.store.Load(ctx, c.Keyring)
			if err != nil {
				return nil, err
			}
			k, ok := ks.Primary(keyring.PurposeData)
			if !ok {
				return nil, fmt.Errorf("keyring %s has no primary data key", c.Keyring)
			}
			primaries[c.Keyring] = k.ID
		}
		key := c.Table + "\x00" + c.Keyring
		if byTable[key] == nil {
			byTable[key] = &tableWork{table: c.Table, keyring: c.Keyring, primary: primaries[c.Keyring]}
			order = append(order, key)
		}
		byTable[key].columns++
	}
	for _, t := range only {
		found := false
		for _, w := range byTable {
			found = found || w.table == t
		}
		if !found {
			return nil, fmt.Errorf("table %s has no column in the registry", t)
		}
	}
	inv, err := gormcrypt.Inventory(ctx, fl.db)
	if err != nil {
		return nil, err
	}
	for _, h := range inv {
		w := byTable[h.Table+"\x00"+h.Keyring]
		if w == nil {
			continue
		}
		w.values += h.Values
		if h.KeyID != w.primary {
			w.todo += h.Values
		}
	}
	out := make([]tableWork, len(order))
	for i, k := range order {
		out[i] = *byTable[k]
	}
	return out, nil
}

// groupByKeyring groups the work by keyring, keeping the order.
func groupByKeyring(work []tableWork) [][]tableWork {
	var out [][]tableWork
	idx := map[string]int{}
	for _, w := range work {
		i, ok := idx[w.keyring]
		if !ok {
			i = len(out)
			idx[w.keyring] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], w)
	}
	return out
}

// reencryptKeyring runs the jobs of one keyring's tables.
func reencryptKeyring(ctx context.Context, ff fleetFlags, fl *fleet, work []tableWork, workers, batch int, rate float64, stop <-chan struct{}, p *progress) (rotation.Stats, error) {
	var total rotation.Stats
	kr, release, err := ff.keyringOf(ctx, fl, work[0].keyring)
	if err != nil {
		return total, err
	}
	defer release()
	targets, err := gormcrypt.RegistryTargets(ctx, fl.db, kr)
	if err != nil {
		return total, err
	}
	for _, w := range work {
		var target *gormcrypt.Target
		for _, t := range targets {
			if t.Table() == w.table {
				target = t
			}
		}
		if target == nil {
			return total, fmt.Errorf("no target for table %s", w.table)
		}
		job, err := gormcrypt.NewJob(ctx, target)
		if err != nil {
			return total, err
		}
		start := time.Now()
		var last rotation.Stats
		st, err := rotation.ReencryptJob(ctx, kr, job,
			rotation.WithWorkers(workers), rotation.WithBatchSize(batch), rotation.WithStop(stop),
			rotation.WithProgress(func(s rotation.Stats) {
				p.add(s.Rewritten+s.Skipped+s.Failed-(last.Rewritten+last.Skipped+last.Failed), w.table)
				last = s
				throttle(ctx, stop, start, s.Scanned/int64(max(w.columns, 1)), rate)
			}))
		addUp(&total, st)
		if err != nil {
			return total, fmt.Errorf("%s: %w", w.table, err)
		}
	}
	return total, nil
}

// throttle waits until rows rows at rate rows/s would have taken since
// start (rate 0: no wait), or until stopped.
func throttle(ctx context.Context, stop <-chan struct{}, start time.Time, rows int64, rate float64) {
	if rate <= 0 {
		return
	}
	wait := time.Until(start.Add(time.Duration(float64(rows) / rate * float64(time.Second))))
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	case <-ctx.Done():
	}
}

func addUp(total *rotation.Stats, st rotation.Stats) {
	total.Scanned += st.Scanned
	total.Rewritten += st.Rewritten
	total.Current += st.Current
	total.Skipped += st.Skipped
	total.Failed += st.Failed
}

// progress shows how far the re-encryption is: a progress bar with rate
// and ETA on a terminal, a line every lineEvery otherwise.
type progress struct {
	bar   *progressbar.ProgressBar
	w     io.Writer
	total int64
	start time.Time

	mu    sync.Mutex
	done  int64
	table string
	quit  chan struct{}
	once  sync.Once
}

func newProgress(w io.Writer, total int64) *progress {
	p := &progress{w: w, total: total, start: time.Now(), quit: make(chan struct{})}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("re-encrypting"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("values"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
		return p
	}
	go func() {
		t := time.NewTicker(lineEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.line()
			case <-p.quit:
				return
			}
		}
	}()
	return p
}

func (p *progress) add(n int64, table string) {
	p.mu.Lock()
	p.done += n
	p.table = table
	p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

func (p *progress) line() {
	p.mu.Lock()
	done, table := p.done, p.table
	p.mu.Unlock()
	pct := 100.0
	if p.total > 0 {
		pct = float64(done) * 100 / float64(p.total)
	}
	rate := float64(done) / time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "reencrypt: %s: %d/%d values (%.0f%%), %.0f values/s\n", table, done, p.total, pct, rate)
}

func (p *progress) finish() {
	p.once.Do(func() {
		close(p.quit)
		if p.bar != nil {
			_ = p.bar.Finish()
		}
	})
}
