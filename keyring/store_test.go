package keyring_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/internal/storetest"
	"github.com/keyward/keyward/keyring"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (a, b keyring.Store) {
		s := keyring.NewMemoryStore()
		return s, s
	})
}

func TestFileStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (a, b keyring.Store) {
		p := filepath.Join(t.TempDir(), "keys.json")
		s1, err := keyring.NewFileStore(p)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := keyring.NewFileStore(p)
		if err != nil {
			t.Fatal(err)
		}
		return s1, s2
	})
}

func TestFileStoreFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keys.json")
	s, err := keyring.NewFileStore(p)
	if err != nil {
		t.Fatal(err)
	}
	kr := open(t, "default", newSource(t), s)
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store mode = %v, %v, want 0600", fi.Mode(), err)
	}
	names, err := s.Names(ctx)
	if err != nil || len(names) != 1 || names[0] != "default" {
		t.Errorf("Names = %v, %v", names, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
	_ = kr

	// A file others may write is refused, with the fix in the message.
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "default"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("Load(mode 0666) = %v", err)
	}
	os.Chmod(p, 0o600)

	for name, content := range map[string]string{
		"not json":       "{",
		"unknown format": `{"format":"other","keyrings":{}}`,
		"unknown field":  `{"format":"keyward.keyring/v1","keyrings":{},"extra":1}`,
		"name mismatch":  `{"format":"keyward.keyring/v1","keyrings":{"a":{"name":"b","version":1,"keys":[]}}}`,
	} {
		bad := filepath.Join(t.TempDir(), "keys.json")
		os.WriteFile(bad, []byte(content), 0o600)
		if _, err := keyring.NewFileStore(bad); err == nil {
			t.Errorf("%s: NewFileStore succeeded", name)
		}
	}
	if _, err := keyring.NewFileStore(filepath.Join(dir, "missing-dir", "keys.json")); err == nil {
		t.Error("NewFileStore in a missing directory succeeded")
	}
}

// TestFileStoreAcrossProcesses runs several processes that open and rotate
// one keyring in one file store at the same moment: the file stays valid and
// has exactly one primary.
func TestFileStoreAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "crypto.key")
	if err := filekey.Generate(keyPath); err != nil {
		t.Fatal(err)
	}
	storePath := filepath.Join(dir, "keys.json")
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0])
		cmds[i].Env = append(os.Environ(), "KEYWARD_FILESTORE_CHILD=1", "KEYWARD_CHILD_KEY="+keyPath, "KEYWARD_CHILD_STORE="+storePath)
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
	}
	s, err := keyring.NewFileStore(storePath)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := s.Load(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, k := range ks.Keys {
		if k.State == keyring.StateActive {
			active++
		}
	}
	if active != 1 || len(ks.Keys) < 2 || len(ks.Keys) > 1+procs {
		t.Fatalf("after %d processes: %d keys, %d active", procs, len(ks.Keys), active)
	}
	if ks.Version != uint64(len(ks.Keys)) {
		t.Errorf("version %d with %d keys: a write was lost or doubled", ks.Version, len(ks.Keys))
	}
}

// TestMain runs the child role of TestFileStoreAcrossProcesses when the
// test binary is started as that child.
func TestMain(m *testing.M) {
	if os.Getenv("KEYWARD_FILESTORE_CHILD") != "" {
		if err := fileStoreChild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fileStoreChild opens the shared keyring, encrypts, rotates and decrypts.
func fileStoreChild() error {
	src, err := filekey.Open(os.Getenv("KEYWARD_CHILD_KEY"))
	if err != nil {
		return err
	}
	s, err := keyring.NewFileStore(os.Getenv("KEYWARD_CHILD_STORE"))
	if err != nil {
		return err
	}
	kr, err := keyring.New(context.Background(), "default", src, s)
	if err != nil {
		return err
	}
	defer kr.Close()
	tok, err := kr.EncryptString(ctx, "v")
	if err != nil {
		return err
	}
	if _, err := kr.Rotate(ctx); err != nil {
		return err
	}
	if got, err := kr.DecryptString(ctx, tok); err != nil || got != "v" {
		return fmt.Errorf("decrypt after rotate: %q, %w", got, errors.Join(err))
	}
	return nil
}
