package sharedcache

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-gateway/mcp-gateway/sharedcache/redistest"
)

// testPKI writes a CA and a server certificate for 127.0.0.1 signed by it,
// and returns the CA pool and the server's PEM file names.
func testPKI(t *testing.T) (roots *x509.CertPool, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sharedcache test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	writePEM(t, certFile, "CERTIFICATE", leafDER)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	roots = x509.NewCertPool()
	roots.AddCert(ca)
	return roots, certFile, keyFile
}

func writePEM(t *testing.T, name, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rediss:// works against Debian's redis-server (built with TLS) with the
// server certificate verified, and fails cleanly when it cannot be.
func TestTLS(t *testing.T) {
	roots, certFile, keyFile := testPKI(t)
	srv := redistest.StartTLS(t, certFile, keyFile, "--requirepass", "tls-pw")
	ctx := context.Background()
	url := "rediss://:tls-pw@" + srv.Addr + "/1"

	s, _ := newStore(t, url, func(c *Config) { c.RootCAs = roots })
	if !s.Healthy() {
		t.Fatal("not healthy over TLS with the right CA")
	}
	d := digest("tls-token")
	s.Set(ctx, d, []byte("over tls"), time.Minute)
	if h, ok := s.Get(ctx, d); !ok || string(h.Value) != "over tls" {
		t.Fatalf("Get over TLS = %q %v", h.Value, ok)
	}
	c := newCollector()
	defer s.Subscribe(c.add)()
	if err := s.Revoke(ctx, Revocation{Kind: KindSub, Value: "tls-user"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, KindSub, "tls-user", time.Second)

	// The system roots do not know the test CA: no connection, no data.
	untrusted, _ := newStore(t, url)
	err := untrusted.Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Ping with an unknown CA = %v, want a certificate error", err)
	}
	if _, ok := untrusted.Get(ctx, d); ok {
		t.Fatal("read through an unverified connection")
	}
	// Plain redis:// to a TLS port is refused by the server.
	plain, _ := newStore(t, "redis://:tls-pw@"+srv.Addr)
	if plain.Ping(ctx) == nil {
		t.Fatal("plaintext connection to a TLS port answered")
	}
}
