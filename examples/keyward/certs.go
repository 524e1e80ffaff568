package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyward/keyward/adapters/keyservice"
)

const certsUsage = "certs [-o DIR] [--server NAME[,NAME]] [--client ID]... [--days N]"

// runCerts is `keyward certs`: a test CA and certificates for the key
// service, for a set-up in minutes. Production certificates come from the
// organization's CA (or SPIFFE/SPIRE); these are for development and tests.
func runCerts(e *env, args []string) error {
	fset := newFlags(e, "certs")
	dir := fset.String("o", "certs", "`directory` of the CA and the certificates (created 0700)")
	server := fset.String("server", "localhost,127.0.0.1", "comma-separated DNS `names` and IP addresses of the key service's certificate (made with a new CA, or when given)")
	var clients []string
	fset.Func("client", "client `identity`: a SPIFFE ID (spiffe://trust-domain/path) or a DNS name; the principal the service's policy names (repeatable)", func(id string) error {
		clients = append(clients, id)
		return nil
	})
	days := fset.Int("days", 365, "validity of the certificates, in `days`")
	if err := parse(fset, args); err != nil {
		return err
	}
	if fset.NArg() != 0 {
		return usagef("unexpected argument %q", fset.Arg(0))
	}
	if *days < 1 {
		return usagef("--days must be at least 1")
	}
	serverGiven := false
	fset.Visit(func(f *flag.Flag) { serverGiven = serverGiven || f.Name == "server" })
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	validity := time.Duration(*days) * 24 * time.Hour

	ca, caKey, created, err := loadOrMakeCA(*dir, validity)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(e.stderr, "wrote a new test CA: %s, %s (keep the key private)\n", filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca-key.pem"))
	}
	if (created || serverGiven) && *server != "" {
		tmpl := &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		for _, n := range strings.Split(*server, ",") {
			n = strings.TrimSpace(n)
			if ip := net.ParseIP(n); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else if n != "" {
				tmpl.DNSNames = append(tmpl.DNSNames, n)
			}
		}
		tmpl.Subject.CommonName = strings.TrimSpace(strings.Split(*server, ",")[0])
		if err := issue(*dir, "server", tmpl, ca, caKey, validity); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "wrote the key service's certificate for %s: %s, %s\n", *server, filepath.Join(*dir, "server.pem"), filepath.Join(*dir, "server-key.pem"))
	}
	for _, id := range clients {
		tmpl := &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Subject: pkix.Name{CommonName: id}}
		if strings.HasPrefix(id, "spiffe://") {
			u, err := url.Parse(id)
			if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				return fmt.Errorf("client %q: not a SPIFFE ID (spiffe://trust-domain/path)", id)
			}
			tmpl.URIs = []*url.URL{u}
		} else {
			tmpl.DNSNames = []string{id}
		}
		// The service reads the identity from the certificate this way.
		got, err := keyservice.Identity(tmpl)
		if err != nil || got != id {
			return fmt.Errorf("client %q: not a usable identity (want a SPIFFE ID or a DNS name)", id)
		}
		name := "client-" + fileName(id)
		if err := issue(*dir, name, tmpl, ca, caKey, validity); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "wrote a client certificate for principal %s: %s, %s\n", id, filepath.Join(*dir, name+".pem"), filepath.Join(*dir, name+"-key.pem"))
	}
	return nil
}

// fileName turns an identity into a file name part: the last path segment
// of a SPIFFE ID, or the DNS name, with anything but letters, digits, '.',
// '_' and '-' replaced by '_'.
func fileName(id string) string {
	if strings.HasPrefix(id, "spiffe://") {
		id = strings.TrimRight(id, "/")
		id = id[strings.LastIndexByte(id, '/')+1:]
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, id)
}

// loadOrMakeCA reads dir/ca.pem and dir/ca-key.pem, or makes a new CA
// there when neither exists.
func loadOrMakeCA(dir string, validity time.Duration) (*x509.Certificate, crypto.Signer, bool, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	switch {
	case cerr == nil && kerr == nil:
		cb, _ := pem.Decode(certPEM)
		kb, _ := pem.Decode(keyPEM)
		if cb == nil || kb == nil {
			return nil, nil, false, fmt.Errorf("%s or %s is not PEM", certPath, keyPath)
		}
		cert, err := x509.ParseCertificate(cb.Bytes)
		if err != nil {
			return nil, nil, false, fmt.Errorf("%s: %w", certPath, err)
		}
		key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, nil, false, fmt.Errorf("%s: %w", keyPath, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok || !cert.IsCA {
			return nil, nil, false, fmt.Errorf("%s is not a CA with its key in %s", certPath, keyPath)
		}
		return cert, signer, false, nil
	case !errors.Is(cerr, fs.ErrNotExist) || !errors.Is(kerr, fs.ErrNotExist):
		return nil, nil, false, fmt.Errorf("%s and %s: need both or neither (%v, %v)", certPath, keyPath, cerr, kerr)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, false, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{CommonName: "keyward test CA"},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, false, err
	}
	if err := writeKeyPair(certPath, keyPath, der, key); err != nil {
		return nil, nil, false, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, true, err
}

// issue makes a key and a certificate from tmpl signed by the CA, and
// writes them to dir/name.pem and dir/name-key.pem.
func issue(dir, name string, tmpl *x509.Certificate, ca *x509.Certificate, caKey crypto.Signer, validity time.Duration) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl.SerialNumber = serialNumber()
	tmpl.NotBefore = now.Add(-5 * time.Minute)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	return writeKeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"), der, key)
}

func serialNumber() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// writeKeyPair writes a certificate (0644) and its private key (0600),
// refusing to replace existing files.
func writeKeyPair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	defer clear(keyDER)
	if err := writeNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := writeNew(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	return nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; not replacing it", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
