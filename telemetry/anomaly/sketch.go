package anomaly

import "math/bits"

// hashString is 64-bit FNV-1a with a final avalanche (the splitmix64
// finalizer), so that the bits a Bloom filter takes from it are well
// mixed. It is fixed, not seeded per process, so that an analysis gives
// the same result every time it runs.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix(h)
}

func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// resourceHash hashes the resource of a data ID (see
// telemetry.Event.ResourceName) without building the string: the first and
// last "/"-separated parts, or the explicit resource when set.
func resourceHash(resource, dataID string) uint64 {
	if resource != "" {
		return hashString(resource)
	}
	i, j := -1, -1
	for k := 0; k < len(dataID); k++ {
		if dataID[k] == '/' {
			if i < 0 {
				i = k
			}
			j = k
		}
	}
	if i < 0 || i == j {
		return hashString(dataID)
	}
	return mix(fnvAppend(fnvAppend(14695981039346656037, dataID[:i]), dataID[j:]))
}

func fnvAppend(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Bloom filter parameters of the seen-ID sketch: 16 bits per element and
// 8 probes give a false-positive rate of about 0.06% when a generation is
// full (less before); see seenSet.
const (
	bloomBitsPerElem = 16
	bloomProbes      = 8
	seenMinCap       = 512
	seenMaxCap       = 1 << 15
)

// bloom is a Bloom filter sized for cap elements.
type bloom struct {
	words []uint64
	mask  uint64 // bits - 1 (bits is a power of two)
	n     int
	cap   int
}

func newBloom(capacity int) bloom {
	nbits := uint64(1) << bits.Len64(uint64(capacity*bloomBitsPerElem-1))
	return bloom{words: make([]uint64, nbits/64), mask: nbits - 1, cap: capacity}
}

func (b *bloom) has(h uint64) bool {
	h1, h2 := h, (h>>32|h<<32)|1
	for i := uint64(0); i < bloomProbes; i++ {
		p := (h1 + i*h2) & b.mask
		if b.words[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

func (b *bloom) add(h uint64) {
	h1, h2 := h, (h>>32|h<<32)|1
	for i := uint64(0); i < bloomProbes; i++ {
		p := (h1 + i*h2) & b.mask
		b.words[p/64] |= 1 << (p % 64)
	}
	b.n++
}

// seenSet answers "has this identity read this data ID before?" in bounded
// memory, whatever the number of distinct IDs. It is two generations of
// Bloom filters: new IDs go into the current one; when it holds its
// capacity it becomes the previous one (the one before is dropped) and a
// new current one starts with twice the capacity, up to seenMaxCap. An ID
// read again while only the previous generation holds it is copied into
// the current one, so IDs in use survive the turnover.
//
// Errors, both one-sided:
//   - a never-read ID is taken as seen with the filters' false-positive
//     rate, at most about 0.12% (0.06% per full generation, measured in
//     TestSeenSetErrors), so counts of
//     never-read IDs are low by at most that share;
//   - an ID last read more than one to two generations ago (at least
//     seenMaxCap distinct IDs later, for a heavy reader) counts as never
//     read again.
//
// Memory: 2 bytes per element of capacity and generation, from 1 KiB (one
// generation of 512) to 128 KiB per identity at most.
type seenSet struct {
	cur, prev bloom
}

// testAndAdd reports whether h was seen and records it.
func (s *seenSet) testAndAdd(h uint64) bool {
	if s.cur.words == nil {
		s.cur = newBloom(seenMinCap)
	}
	if s.cur.has(h) {
		return true
	}
	seen := s.prev.words != nil && s.prev.has(h)
	if s.cur.n >= s.cur.cap {
		s.prev = s.cur
		s.cur = newBloom(min(2*s.prev.cap, seenMaxCap))
	}
	s.cur.add(h)
	return seen
}

// bytes returns the memory the set holds.
func (s *seenSet) bytes() int { return 8 * (len(s.cur.words) + len(s.prev.words)) }

// smallSet is an exact set of hashes for the few distinct values an
// identity has (resources, networks, clients), at most max of them; when
// full, the oldest is forgotten to make room.
type smallSet struct {
	h    []uint64
	next int // replaced next when full
}

func (s *smallSet) has(h uint64) bool {
	for _, x := range s.h {
		if x == h {
			return true
		}
	}
	return false
}

func (s *smallSet) add(h uint64, max int) {
	if len(s.h) < max {
		s.h = append(s.h, h)
		return
	}
	s.h[s.next] = h
	s.next = (s.next + 1) % max
}
