package rotation_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"sync"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/rotation"
)

// sliceTarget is a minimal Target: values in a slice, the cursor is the
// index after the last value read.
type sliceTarget struct {
	mu   sync.Mutex
	vals [][]byte
}

func (s *sliceTarget) Scan(_ context.Context, cursor string, limit int) ([]rotation.Value, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := 0
	if cursor != "" {
		var err error
		if from, err = strconv.Atoi(cursor); err != nil {
			return nil, "", err
		}
	}
	var out []rotation.Value
	i := from
	for ; i < len(s.vals) && len(out) < limit; i++ {
		out = append(out, rotation.Value{ID: "value/" + strconv.Itoa(i), Stored: bytes.Clone(s.vals[i]), AAD: []byte(strconv.Itoa(i)), Row: i})
	}
	return out, strconv.Itoa(i), nil
}

func (s *sliceTarget) Swap(_ context.Context, v rotation.Value, token []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := v.Row.(int)
	if !bytes.Equal(s.vals[i], v.Stored) {
		return false, nil // changed meanwhile: leave it
	}
	s.vals[i] = token
	return true, nil
}

func ExampleReencrypt() {
	ctx := context.Background()
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	src, _ := filekey.New(kek)
	kr, _ := keyring.New(ctx, "default", src, keyring.NewMemoryStore())
	defer kr.Close()

	t := &sliceTarget{}
	for i := range 10 {
		tok, _ := kr.EncryptText(ctx, "secret "+strconv.Itoa(i), []byte(strconv.Itoa(i)))
		t.vals = append(t.vals, []byte(tok))
	}

	if _, err := kr.Rotate(ctx); err != nil {
		fmt.Println(err)
		return
	}
	st, err := rotation.Reencrypt(ctx, kr, t, rotation.WithBatchSize(4))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("scanned %d, rewritten %d, current %d, batches %d\n", st.Scanned, st.Rewritten, st.Current, st.Batches)
	h, _ := cipher.ParseHeader(string(t.vals[7]))
	pt, _ := kr.DecryptText(ctx, string(t.vals[7]), []byte("7"))
	fmt.Println(h.KeyID == kr.Primary(), pt)
	// Output:
	// scanned 10, rewritten 10, current 0, batches 3
	// true secret 7
}

func ExampleRotateKey() {
	ctx := context.Background()
	oldKey, _ := rotation.GenerateKey()
	newKey, _ := rotation.GenerateKey()
	t := &sliceTarget{}
	for i := range 3 {
		tok, _ := cipher.EncryptData("secret "+strconv.Itoa(i), oldKey, cipher.WithAAD([]byte(strconv.Itoa(i))))
		t.vals = append(t.vals, []byte(tok))
	}
	if err := rotation.RotateKey(ctx, oldKey, newKey, t); err != nil {
		fmt.Println(err)
		return
	}
	pt, err := cipher.DecryptData(string(t.vals[2]), newKey, cipher.WithAAD([]byte("2")))
	fmt.Println(pt, err)
	_, err = cipher.DecryptData(string(t.vals[2]), oldKey, cipher.WithAAD([]byte("2")))
	fmt.Println(err)
	// Output:
	// secret 2 <nil>
	// cipher: message authentication failed
}

func ExampleGenerateKey() {
	key, err := rotation.GenerateKey()
	fmt.Println(len(key), err)
	// Output: 32 <nil>
}
