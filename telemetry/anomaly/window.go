package anomaly

// window counts events in a sliding time window with fixed slots: the
// window is len(slots) slots wide, the newest one being the slot of the
// latest time added. Times must not decrease (the analyzer clamps them).
type window struct {
	slots []int64
	first []int64 // time of the first event of each slot
	width int64   // nanoseconds per slot
	head  int64   // absolute index of the newest slot; -1 when empty
	sum   int
}

func newWindow(span int64, n int) window {
	w := span / int64(n)
	if w <= 0 {
		w = 1
	}
	return window{slots: make([]int64, n), first: make([]int64, n), width: w, head: -1 << 62}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// advance moves the window so that t is in its newest slot, dropping the
// counts that fall out.
func (w *window) advance(t int64) {
	idx := floorDiv(t, w.width)
	if idx <= w.head {
		return
	}
	n := int64(len(w.slots))
	if idx-w.head >= n {
		for i := range w.slots {
			w.slots[i] = 0
		}
		w.sum = 0
	} else {
		for j := w.head + 1; j <= idx; j++ {
			s := int(mod(j, n))
			w.sum -= int(w.slots[s])
			w.slots[s] = 0
		}
	}
	w.head = idx
}

func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

// add counts n events at t and returns the count in the window.
func (w *window) add(t int64, n int) int {
	w.advance(t)
	s := int(mod(floorDiv(t, w.width), int64(len(w.slots))))
	if w.slots[s] == 0 {
		w.first[s] = t
	}
	w.slots[s] += int64(n)
	w.sum += n
	return w.sum
}

// start returns the time of the oldest event still in the window.
func (w *window) start() int64 {
	n := int64(len(w.slots))
	for j := w.head - n + 1; j <= w.head; j++ {
		s := mod(j, n)
		if w.slots[s] != 0 {
			return w.first[s]
		}
	}
	return 0
}
