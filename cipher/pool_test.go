package cipher

import (
	"bytes"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoncesUnique seals from many goroutines, across many refills of the
// pooled nonce blocks, and checks that no nonce is handed out twice.
func TestNoncesUnique(t *testing.T) {
	const (
		workers = 8
		each    = 3 * nonceBlockSize / 12 // several blocks' worth per goroutine
	)
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			c := mustAEAD(t, alg, testKey(3), 7)
			ns := alg.NonceSize()
			got := make([][]string, workers)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						var tok []byte
						if i%2 == 0 {
							tok = c.Seal(nil, []byte("value"), []byte("row 1"))
						} else {
							b, err := DecodeText(SealText(c, "value", nil))
							if err != nil {
								panic(err)
							}
							tok = b
						}
						got[w] = append(got[w], string(tok[HeaderSize:HeaderSize+ns]))
					}
				})
			}
			wg.Wait()
			seen := make(map[string]bool, workers*each)
			for _, list := range got {
				for _, n := range list {
					require.Falsef(t, seen[n], "nonce %x handed out twice", n)
					seen[n] = true
				}
			}
			assert.Len(t, seen, workers*each)
		})
	}
}

// TestNonceBlockZeroed checks that a nonce block zeroes the bytes it hands
// out, so it never holds a nonce already in use, and refills when it runs
// out.
func TestNonceBlockZeroed(t *testing.T) {
	b := &nonceBlock{off: nonceBlockSize}
	first := make([]byte, 12)
	b.take(first)
	assert.Equal(t, 12, b.off, "a fresh block is filled, then cut from the start")
	assert.NotEqual(t, make([]byte, 12), first, "nonce is random")
	for range nonceBlockSize/12 - 1 {
		b.take(make([]byte, 12))
	}
	assert.Equal(t, make([]byte, b.off), b.buf[:b.off], "bytes handed out are zero in the block")
	last := make([]byte, 12)
	b.take(last) // 4 bytes left: too few, so the block is refilled
	assert.Equal(t, 12, b.off)
	assert.NotEqual(t, first, last)
}

// TestScratchCleared checks that scratch buffers go back to the pool empty
// after holding associated data, a decoded token or plaintext.
func TestScratchCleared(t *testing.T) {
	p := getScratch(64)
	copy(*p, "secret plaintext and associated data")
	buf := (*p)[:cap(*p)]
	putScratch(p)
	assert.Equal(t, make([]byte, len(buf)), buf, "scratch cleared before reuse")
	assert.Empty(t, *p)

	big := getScratch(scratchMax + 1)
	copy(*big, "secret")
	whole := (*big)[:cap(*big)]
	putScratch(big)
	assert.Equal(t, make([]byte, len(whole)), whole, "a large buffer is cleared too, though not kept")
}

// TestSealTextAAD round-trips text tokens with associated data through the
// pooled paths and checks the binding holds.
func TestSealTextAAD(t *testing.T) {
	c := mustAEAD(t, AES256GCM, testKey(4), 9)
	aad := []byte("users\x00email\x00pk=42")
	for _, pt := range []string{"", "x", "a 64-byte value ........................................!!", string(make([]byte, 70000))} {
		tok := SealText(c, pt, aad)
		got, err := OpenText(c, tok, aad)
		require.NoError(t, err)
		assert.Equal(t, pt, got)
		_, err = OpenText(c, tok, []byte("users\x00email\x00pk=43"))
		assert.ErrorIs(t, err, ErrDecrypt, "OpenText with other associated data")
		bin := c.Seal(nil, []byte(pt), aad)
		gotb, err := c.Open(nil, bin, aad)
		require.NoError(t, err)
		assert.Equal(t, []byte(pt), append([]byte{}, gotb...))
		_, err = c.Open(nil, bin, nil)
		assert.ErrorIs(t, err, ErrDecrypt, "Open without associated data")
	}
}

// TestOpenTextWith checks the decode-once path a keyring uses: the key ID
// comes from the decoded header, a nil pick is ErrKeyIDMismatch, and
// malformed tokens fail before pick is called.
func TestOpenTextWith(t *testing.T) {
	c := mustAEAD(t, AES256GCM, testKey(5), 11)
	other := mustAEAD(t, AES256GCM, testKey(6), 12)
	aad := []byte("row 7")
	tok := SealText(c, "secret", aad)

	var asked []uint32
	pick := func(id uint32) *AEAD {
		asked = append(asked, id)
		switch id {
		case 11:
			return c
		}
		return nil
	}
	pt, err := OpenTextWith(tok, aad, pick)
	require.NoError(t, err)
	assert.Equal(t, "secret", pt)
	assert.Equal(t, []uint32{11}, asked)

	asked = nil
	_, err = OpenTextWith(SealText(other, "secret", aad), aad, pick)
	assert.ErrorIs(t, err, ErrKeyIDMismatch, "pick has no key ID 12")
	assert.Equal(t, []uint32{12}, asked)

	_, err = OpenTextWith(tok, []byte("row 8"), pick)
	assert.ErrorIs(t, err, ErrDecrypt, "OpenTextWith with other associated data")

	_, err = OpenTextWith(tok, aad, func(uint32) *AEAD { return other })
	assert.ErrorIs(t, err, ErrKeyIDMismatch, "OpenTextWith under the AEAD of another key ID")

	asked = nil
	for _, bad := range []string{"", "plain", "kw1.", "kw1.AQ", "kw1.A", "kw1.AQE*AAAL"} {
		_, err = OpenTextWith(bad, aad, pick)
		assert.ErrorIsf(t, err, ErrMalformedToken, "OpenTextWith(%q)", bad)
	}
	assert.Empty(t, asked, "pick is not called for malformed tokens")
}

// TestOpenKeepsSpareCapacity checks that Open with associated data writes
// nothing of the caller's buffer beyond the plaintext it appends.
func TestOpenKeepsSpareCapacity(t *testing.T) {
	c := mustAEAD(t, AES256GCM, testKey(7), 13)
	aad := []byte("users/email/42")
	tok := c.Seal(nil, []byte("secret"), aad)
	buf := make([]byte, 64)
	for i := range buf {
		buf[i] = 0xee
	}
	pt, err := c.Open(buf[:2:64], tok, aad)
	require.NoError(t, err)
	assert.Equal(t, append([]byte{0xee, 0xee}, "secret"...), pt)
	assert.Equal(t, bytes.Repeat([]byte{0xee}, 64-8), buf[8:], "bytes after the plaintext untouched")
}
