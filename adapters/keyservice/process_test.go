package keyservice_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/keyward/keyward/access"
	"github.com/keyward/keyward/adapters/filekey"
	"github.com/keyward/keyward/adapters/gormcrypt"
	"github.com/keyward/keyward/adapters/keyservice"
	"github.com/keyward/keyward/internal/dbtest"
	"github.com/keyward/keyward/keyring"
)

// envServe makes the test binary a key service process (see serveMain)
// serving the files of the directory it names.
const envServe = "KEYSERVICE_TEST_SERVE_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(envServe); dir != "" {
		if err := serveMain(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveMain runs a key service over dir's crypto.key, server.pem,
// server-key.pem, ca.pem and policy.json on a loopback port, prints
// "listening ADDR" once it accepts calls, and stops gracefully on SIGTERM.
func serveMain(dir string) error {
	src, err := filekey.Open(filepath.Join(dir, "crypto.key"))
	if err != nil {
		return err
	}
	policy, err := access.LoadPolicyFile(filepath.Join(dir, "policy.json"))
	if err != nil {
		return err
	}
	srv, err := keyservice.NewServer(src, policy,
		keyservice.WithServerTLSFiles(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "ca.pem")),
		keyservice.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		keyservice.WithAuditor(must(access.NewAuditor(access.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))))),
		keyservice.WithRateLimit(1e6, 1e6))
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		<-stop
		_ = srv.Shutdown(context.Background())
	}()
	fmt.Printf("listening %s\n", lis.Addr())
	return srv.Serve(lis)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// startProcess starts a key service in a separate process (this test
// binary, see serveMain) with a new KEK, a server certificate for name from
// the service ca, and the test policy, and waits until it listens. The
// process is stopped with SIGTERM when the test ends.
func startProcess(t *testing.T, c *ca, name string) *service {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, filekey.Generate(filepath.Join(dir, "crypto.key")))
	writePEM(t, dir, "server", c.issue(t, leaf{server: true, dns: []string{name}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}}))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.pem"), c.pem(), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.json"), []byte(policyJSON), 0o600))

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envServe+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			assert.NoError(t, err, "the key service process exits cleanly on SIGTERM")
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the key service process did not stop within 30 s of SIGTERM")
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "reading the key service's address")
	go func() { exited <- cmd.Wait() }()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	require.True(t, ok, "first line of the key service: %q", line)
	return &service{name: name, addr: addr, ca: c}
}

func TestSeparateProcess(t *testing.T) {
	svc := startProcess(t, newCA(t, "process CA"), "keys.test")
	src := svc.client(t, billing)
	store := keyring.NewMemoryStore()
	kr, err := keyring.New(ctx, "orders", src, store)
	require.NoError(t, err)
	defer kr.Close()
	tok, err := kr.EncryptString(ctx, "4111 1111 1111 1111")
	require.NoError(t, err)
	kr2, err := keyring.New(ctx, "orders", svc.client(t, billing), store)
	require.NoError(t, err)
	defer kr2.Close()
	got, err := kr2.DecryptString(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, "4111 1111 1111 1111", got, "round trip through a key service process")
	_, err = svc.client(t, outsider).Wrap(ctx, randomKey(t), dekAAD("orders", 1))
	assert.ErrorIs(t, err, keyring.ErrKEKAccessDenied, "a principal the process's policy does not allow")
}

// Patient is a GORM model with encrypted fields.
type Patient struct {
	ID       uuid.UUID `gorm:"type:varchar(36);primaryKey"`
	Name     string
	SSN      string `gorm:"serializer:keyward"`
	Email    string `gorm:"serializer:keyward" keyward:"blind:EmailIdx;normalize:lower,trim"`
	EmailIdx []byte `gorm:"index"`
}

// TestGORM uses a keyring over the key service (in-process and in a
// separate process), with its keys in the database, for GORM field
// encryption end to end on SQLite and PostgreSQL.
func TestGORM(t *testing.T) {
	for _, where := range []string{"InProcess", "SeparateProcess"} {
		t.Run(where, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
				var svc *service
				if where == "InProcess" {
					svc = startService(t, serviceConfig{audit: true})
				} else {
					svc = startProcess(t, newCA(t, "gorm CA"), "keys.test")
				}
				store, err := gormcrypt.NewStore(ctx, db)
				require.NoError(t, err)
				kr, err := keyring.New(ctx, "patients", svc.client(t, billing), store)
				require.NoError(t, err)
				defer kr.Close()
				_, err = gormcrypt.Register(db, kr)
				require.NoError(t, err)
				require.NoError(t, db.AutoMigrate(&Patient{}))
				in := []Patient{
					{ID: uuid.New(), Name: "Ada", SSN: "123-45-6789", Email: "ada@example.com"},
					{ID: uuid.New(), Name: "Bob", SSN: "987-65-4321", Email: "bob@example.com"},
				}
				require.NoError(t, db.WithContext(ctx).Create(&in).Error)

				var stored string
				require.NoError(t, db.Raw("SELECT ssn FROM patients WHERE id = ?", in[0].ID).Scan(&stored).Error)
				assert.True(t, strings.HasPrefix(stored, "kw1."), "the database holds a token, not %q", stored)

				// Another application instance: its own keyring over the same
				// database store and key service, cold cache.
				db2 := dbtest.Reopen(t, db, nil)
				kr2, err := keyring.New(ctx, "patients", svc.client(t, billing), store)
				require.NoError(t, err)
				defer kr2.Close()
				_, err = gormcrypt.Register(db2, kr2)
				require.NoError(t, err)
				var got Patient
				require.NoError(t, gormcrypt.Where(db2.WithContext(ctx), "Email", "BOB@example.com").First(&got).Error)
				assert.Equal(t, "987-65-4321", got.SSN, "blind index lookup and decryption in a second instance")
				if svc.audit != nil {
					assert.NotEmpty(t, svc.records(t), "the key service audited the keyring's calls")
				}
			})
		})
	}
}
