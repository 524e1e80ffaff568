package keyservice

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// InsecurePrincipal is the principal of every call to a server started with
// WithServerInsecureLoopback: without a client certificate there is no identity,
// so a policy grants local development access to this name. It is neither a
// SPIFFE ID nor a DNS name, so no certificate can claim it.
const InsecurePrincipal = "insecure:loopback"

// Identity returns the principal name a client certificate stands for: its
// SPIFFE ID (the URI SAN with the spiffe scheme; a certificate with several
// URI SANs, which SPIFFE forbids, has none) or else its first DNS SAN. The
// server calls it during the handshake and refuses a certificate for which
// it fails.
func Identity(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", errors.New("keyservice: no client certificate")
	}
	var spiffe []string
	for _, u := range cert.URIs {
		if u.Scheme == "spiffe" {
			spiffe = append(spiffe, u.String())
		}
	}
	switch {
	case len(spiffe) == 1 && len(cert.URIs) == 1:
		if cert.URIs[0].Host == "" || strings.ContainsAny(spiffe[0], "*?#") {
			return "", fmt.Errorf("keyservice: client certificate has a malformed SPIFFE ID")
		}
		return spiffe[0], nil
	case len(spiffe) > 0:
		return "", fmt.Errorf("keyservice: client certificate has %d URI SANs; a SPIFFE certificate has exactly one", len(cert.URIs))
	case len(cert.DNSNames) > 0 && cert.DNSNames[0] != "" && !strings.Contains(cert.DNSNames[0], "*"):
		return cert.DNSNames[0], nil
	}
	return "", errors.New("keyservice: client certificate has neither a SPIFFE ID nor a DNS name")
}

// caller is who made a call: the principal and the network source.
type caller struct {
	principal string
	source    string // the peer's IP address, "" when unknown
}

// callerFrom reads the caller of a call from its context: the identity of
// the verified client certificate, or InsecurePrincipal on an insecure
// loopback server.
func callerFrom(ctx context.Context, insecure bool) (caller, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return caller{}, errors.New("no peer")
	}
	c := caller{source: hostOf(p.Addr)}
	if insecure {
		c.principal = InsecurePrincipal
		return c, nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return caller{}, errors.New("no verified client certificate")
	}
	id, err := Identity(ti.State.VerifiedChains[0][0])
	if err != nil {
		return caller{}, err
	}
	c.principal = id
	return c, nil
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	return h
}

// verifyIdentity is the server TLS config's VerifyConnection: a client
// certificate that names no identity is refused at the handshake, like one
// that does not verify.
func verifyIdentity(cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return errors.New("keyservice: no verified client certificate")
	}
	_, err := Identity(cs.VerifiedChains[0][0])
	return err
}

// isLoopback reports whether a is a loopback TCP address.
func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}
