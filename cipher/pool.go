package cipher

import (
	"crypto/rand"
	"sync"
)

// nonceBlockSize is how many bytes of crypto/rand output one read fetches
// for nonces: 341 AES-GCM nonces, so the cost of a crypto/rand call is shared
// by that many seals.
const nonceBlockSize = 4096

// nonceBlock is random bytes not yet handed out: buf[off:] is unused, and
// every byte before off has been handed out once and then zeroed.
type nonceBlock struct {
	buf [nonceBlockSize]byte
	off int
}

// nonces holds nonce blocks. sync.Pool gives a block to one goroutine at a
// time (Get removes it), so two seals never read the same bytes; a block the
// pool drops takes its unused bytes with it, which wastes them but never
// reuses them.
var nonces = sync.Pool{New: func() any { return &nonceBlock{off: nonceBlockSize} }}

// readNonce fills n with fresh random bytes that no other call has been or
// will be given. The bytes come from a pooled block of crypto/rand output,
// which is refilled when it runs out; each range of the block is copied out
// once and zeroed at once, so a block never holds a nonce after handing it
// out.
func readNonce(n []byte) {
	b := nonces.Get().(*nonceBlock)
	b.take(n)
	nonces.Put(b)
}

// take fills n with the block's next unused bytes, refilling the block from
// crypto/rand first when too few are left, and zeroes them in the block.
func (b *nonceBlock) take(n []byte) {
	if nonceBlockSize-b.off < len(n) {
		_, _ = rand.Read(b.buf[:]) // never fails since Go 1.24
		b.off = 0
	}
	src := b.buf[b.off : b.off+len(n)]
	copy(n, src)
	clear(src)
	b.off += len(n)
}

// scratchMax is the largest scratch buffer kept for reuse; larger ones are
// left to the garbage collector, so one big message does not pin memory.
const scratchMax = 16 << 10

// scratch holds *[]byte buffers for the header||AAD bytes of a seal or open
// and for decoding text tokens. A buffer is cleared before it goes back.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

// getScratch returns a pooled buffer of n bytes; give it back with
// putScratch.
func getScratch(n int) *[]byte {
	p := scratch.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, n)
	}
	*p = (*p)[:n]
	return p
}

// putScratch clears the buffer (it may have held plaintext or associated
// data) and returns it to the pool, unless it is too large to keep.
func putScratch(p *[]byte) {
	clear(*p)
	if cap(*p) > scratchMax {
		return
	}
	*p = (*p)[:0]
	scratch.Put(p)
}
