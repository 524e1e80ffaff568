package cipher_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/keyward/keyward/cipher"
)

func Example() {
	key := bytes.Repeat([]byte{7}, cipher.KeySize) // use filekey.Load or a keyring in real code

	token, err := cipher.EncryptData("123-45-6789", key)
	if err != nil {
		panic(err)
	}
	plain, err := cipher.DecryptData(token, key)
	fmt.Println(plain, err)

	_, err = cipher.DecryptData(token, bytes.Repeat([]byte{8}, cipher.KeySize))
	fmt.Println(errors.Is(err, cipher.ErrDecrypt))
	// Output:
	// 123-45-6789 <nil>
	// true
}

func ExampleParseText() {
	key := bytes.Repeat([]byte{7}, cipher.KeySize)
	c, _ := cipher.NewAEAD(cipher.XChaCha20Poly1305, key, 42)
	token := cipher.SealText(c, "hello", []byte("users.email"))

	t, err := cipher.ParseText(token)
	fmt.Println(t.Version, t.Algorithm, t.KeyID, len(t.Nonce), len(t.Ciphertext), err)
	// Output: 1 XChaCha20-Poly1305 42 24 21 <nil>
}

func ExampleAEAD_Open() {
	key := bytes.Repeat([]byte{7}, cipher.KeySize)
	c, _ := cipher.NewAEAD(cipher.AES256GCM, key, 1)
	token := c.Seal(nil, []byte("card 4111"), []byte("payments/9/pan"))

	plain, err := c.Open(nil, token, []byte("payments/9/pan"))
	fmt.Printf("%s %v\n", plain, err)

	_, err = c.Open(nil, token, []byte("payments/10/pan")) // moved to another row
	fmt.Println(err)
	// Output:
	// card 4111 <nil>
	// cipher: message authentication failed
}

func ExampleOpenTextWith() {
	// Two keys by ID, as after a rotation: each token names its key.
	old, _ := cipher.NewAEAD(cipher.AES256GCM, bytes.Repeat([]byte{1}, cipher.KeySize), 1)
	cur, _ := cipher.NewAEAD(cipher.AES256GCM, bytes.Repeat([]byte{2}, cipher.KeySize), 2)
	keys := map[uint32]*cipher.AEAD{1: old, 2: cur}
	pick := func(id uint32) *cipher.AEAD { return keys[id] }

	aad := []byte("users/42/email")
	for _, token := range []string{cipher.SealText(old, "ada@example.com", aad), cipher.SealText(cur, "ada@example.org", aad)} {
		plain, err := cipher.OpenTextWith(token, aad, pick)
		fmt.Println(plain, err)
	}
	delete(keys, 1)
	_, err := cipher.OpenTextWith(cipher.SealText(old, "x", aad), aad, pick)
	fmt.Println(errors.Is(err, cipher.ErrKeyIDMismatch))
	// Output:
	// ada@example.com <nil>
	// ada@example.org <nil>
	// true
}
