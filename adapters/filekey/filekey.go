package filekey

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/keyward/keyward/cipher"
	"github.com/keyward/keyward/internal/fsutil"
)

// KeySize is the length of a file key: 32 bytes (256 bits).
const KeySize = cipher.KeySize

// maxFileSize bounds what Load reads: a key file is 45 bytes or so.
const maxFileSize = 4096

// ErrPermissions reports a key file that group or others may read or write.
var ErrPermissions = errors.New("filekey: key file is accessible by group or others")

// ErrInvalidKey reports a key file whose content is not one Base64-encoded
// 32-byte key.
var ErrInvalidKey = errors.New("filekey: invalid key file")

// Load reads a key file: one 32-byte key in Base64 (standard or URL
// alphabet, with or without padding; surrounding whitespace such as a final
// newline is allowed, whitespace inside is not). It is the specification's
// load_crypto_key.
//
// Load refuses a file that group or others may read or write (as ssh does
// with private keys), with an error that says how to fix it. Symbolic links
// are followed, because Kubernetes and Docker mount secrets through them; the
// permission check applies to the file the link leads to, read from the open
// descriptor, so the file checked is the file read. Anything but a regular
// file (a FIFO, a device, a directory) is refused with ErrInvalidKey; the
// file is opened without blocking (O_NONBLOCK on Unix), so a FIFO nobody
// writes to cannot hang the caller. A key of any length other than 32 bytes
// is an error; keys are never cropped or padded.
func Load(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNonBlocking, 0)
	if err != nil {
		return nil, fmt.Errorf("filekey: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("filekey: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalidKey, path)
	}
	if err := checkPermissions(path, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("filekey: %w", err)
	}
	defer clear(data)
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidKey, path, maxFileSize)
	}
	key, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return key, nil
}

// Parse decodes the content of a key file (see Load). Errors never quote
// the content.
func Parse(data []byte) ([]byte, error) {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	url := bytes.ContainsAny(s, "-_")
	padded := s[len(s)-1] == '='
	var enc *base64.Encoding
	switch {
	case url && padded:
		enc = base64.URLEncoding
	case url:
		enc = base64.RawURLEncoding
	case padded:
		enc = base64.StdEncoding
	default:
		enc = base64.RawStdEncoding
	}
	enc = enc.Strict()
	// The decoder skips line breaks; anything inside the key is an error.
	if bytes.ContainsAny(s, " \t\r\n\v\f") {
		return nil, fmt.Errorf("%w: whitespace inside the Base64 key", ErrInvalidKey)
	}
	key := make([]byte, enc.DecodedLen(len(s)))
	n, err := enc.Decode(key, s)
	if err != nil {
		clear(key)
		return nil, fmt.Errorf("%w: not valid Base64 (mixed alphabets or stray characters?)", ErrInvalidKey)
	}
	if n != KeySize {
		clear(key)
		return nil, fmt.Errorf("%w: the key is %d bytes, want %d (keys are never cropped or padded; make one with filekey.Generate or `keyward keygen`)", ErrInvalidKey, n, KeySize)
	}
	return key[:n:n], nil
}

// Encode returns the file form of key: standard padded Base64 and a newline.
func Encode(key []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, cipher.KeySizeError(len(key))
	}
	out := base64.StdEncoding.AppendEncode(nil, key)
	return append(out, '\n'), nil
}

// Generate writes a new random key to path with mode 0600. It refuses to
// overwrite an existing file (or follow a link where the file should be).
func Generate(path string) error {
	key := make([]byte, KeySize)
	defer clear(key)
	_, _ = rand.Read(key)
	return Write(path, key)
}

// Write writes key to a new file at path with mode 0600, refusing to
// overwrite an existing file.
func Write(path string, key []byte) (err error) {
	data, err := Encode(key)
	if err != nil {
		return err
	}
	defer clear(data)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("filekey: %s already exists; refusing to overwrite a key (data encrypted under it would be lost)", path)
	}
	if err != nil {
		return fmt.Errorf("filekey: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("filekey: %w", cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	if err := f.Chmod(0o600); err != nil { // in case the umask widened it
		return fmt.Errorf("filekey: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("filekey: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("filekey: %w", err)
	}
	// Make the new directory entry durable too, so that a crash right after
	// data was encrypted under the key cannot lose the file (best effort:
	// not every file system syncs directories).
	_ = fsutil.SyncDir(filepath.Dir(path))
	return nil
}

// fingerprint identifies a key without revealing it: HMAC-SHA256 of a
// fixed label under the key.
func fingerprint(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("keyward.filekey.id/v1"))
	return m.Sum(nil)
}

// keyID is the token key ID of wrapped keys: 32 bits of the fingerprint, so
// a key wrapped under another file key is reported as such before any
// decryption.
func keyID(fp []byte) uint32 {
	if id := binary.BigEndian.Uint32(fp); id != 0 {
		return id
	}
	return 1
}

func idString(fp []byte) string { return "filekey:" + hex.EncodeToString(fp[:8]) }

func permString(m fs.FileMode) string { return "0" + strconv.FormatUint(uint64(m.Perm()), 8) }
