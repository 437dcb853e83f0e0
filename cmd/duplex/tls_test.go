package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/internal/testcert"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key as PEM
// files in dir and returns their paths and a pool trusting the certificate.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	c := testcert.New(t)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, c.Pool
}

func TestLoadTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := writeSelfSigned(t, dir)
	if c, err := loadTLS("", ""); c != nil || err != nil {
		t.Fatalf("no files: %v, %v", c, err)
	}
	if c, err := loadTLS(cert, key); err != nil || len(c.Certificates) != 1 || c.MinVersion != tls.VersionTLS12 {
		t.Fatalf("pair: %v", err)
	}
	for name, files := range map[string][2]string{
		"cert only":    {cert, ""},
		"key only":     {"", key},
		"swapped":      {key, cert},
		"missing file": {filepath.Join(dir, "nope"), key},
	} {
		if _, err := loadTLS(files[0], files[1]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestServeTLS runs the binary with --tls-cert and --tls-key and talks to
// it over https and wss.
func TestServeTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	cert, key, pool := writeSelfSigned(t, dir)
	secret := "tls-test-secret-tls-test-secret-0123456"
	p := startServer(t, bin, "", nil, "serve", "--addr", "127.0.0.1:0", "--log-format", "json",
		"--data-dir", filepath.Join(dir, "data"), "--jwt-secret", secret, "--tls-cert", cert, "--tls-key", key)

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + p.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over https: %d", resp.StatusCode)
	}

	tok, err := auth.Mint([]byte(secret), "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{"Authorization": {"Bearer " + tok}}
	c, _, err := ws.Dial(ctx, "wss://"+p.addr+"/ws", &ws.DialOptions{Header: h, Subprotocols: []string{protocol.Subprotocol}, TLSConfig: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, msg, err := c.Read(ctx); err != nil || len(msg) == 0 {
		t.Fatalf("welcome over wss: %q, %v", msg, err)
	}
}
