package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	testNow    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

type keys struct {
	rsa   *rsa.PrivateKey
	ec    *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
	rsaPE []byte // PEM of the RSA public key
}

func newKeys(t *testing.T) keys {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, dk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return keys{rsa: rk, ec: ek, ed: dk, rsaPE: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(sub string, exp time.Duration) jwt.MapClaims {
	c := jwt.MapClaims{"exp": testNow.Add(exp).Unix(), "iat": testNow.Unix()}
	if sub != "" {
		c["sub"] = sub
	}
	return c
}

func TestVerify(t *testing.T) {
	k := newKeys(t)
	hs := Config{Secret: testSecret}
	rs := Config{PublicKey: &k.rsa.PublicKey}
	es := Config{PublicKey: &k.ec.PublicKey}
	ed := Config{PublicKey: k.ed.Public()}
	both := Config{Secret: testSecret, PublicKey: &k.rsa.PublicKey}

	noExp := jwt.MapClaims{"sub": "alice"}
	future := claims("alice", time.Hour)
	future["nbf"] = testNow.Add(10 * time.Minute).Unix()

	tests := []struct {
		name    string
		cfg     Config
		token   string
		want    string
		wantErr error
	}{
		{"hs256 ok", hs, sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", time.Hour)), "alice", nil},
		{"hs256 expired", hs, sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", -time.Hour)), "", ErrExpired},
		{"hs256 expired within leeway", hs, sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", -10*time.Second)), "alice", nil},
		{"nbf in future", hs, sign(t, jwt.SigningMethodHS256, testSecret, future), "", ErrInvalidToken},
		{"no exp", hs, sign(t, jwt.SigningMethodHS256, testSecret, noExp), "", ErrInvalidToken},
		{"wrong secret", hs, sign(t, jwt.SigningMethodHS256, []byte("another secret of enough length!!"), claims("alice", time.Hour)), "", ErrInvalidToken},
		{"hs512 refused", hs, sign(t, jwt.SigningMethodHS512, testSecret, claims("alice", time.Hour)), "", ErrInvalidToken},
		{"none alg", hs, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("alice", time.Hour)), "", ErrInvalidToken},
		{"missing sub", hs, sign(t, jwt.SigningMethodHS256, testSecret, claims("", time.Hour)), "", ErrInvalidToken},
		{"sub with space", hs, sign(t, jwt.SigningMethodHS256, testSecret, claims("a b", time.Hour)), "", ErrInvalidToken},
		{"malformed", hs, "not.a.jwt", "", ErrInvalidToken},
		{"empty", hs, "", "", ErrInvalidToken},
		{"rs256 ok", rs, sign(t, jwt.SigningMethodRS256, k.rsa, claims("bob", time.Hour)), "bob", nil},
		{"rs256 expired", rs, sign(t, jwt.SigningMethodRS256, k.rsa, claims("bob", -time.Hour)), "", ErrExpired},
		// Algorithm confusion: the public key is public, so an HS256 token
		// keyed with its PEM bytes must not verify.
		{"hs256 with public key as secret", rs, sign(t, jwt.SigningMethodHS256, k.rsaPE, claims("mallory", time.Hour)), "", ErrInvalidToken},
		{"hs256 with public key as secret, both configured", both, sign(t, jwt.SigningMethodHS256, k.rsaPE, claims("mallory", time.Hour)), "", ErrInvalidToken},
		{"both: hs256 ok", both, sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", time.Hour)), "alice", nil},
		{"both: rs256 ok", both, sign(t, jwt.SigningMethodRS256, k.rsa, claims("bob", time.Hour)), "bob", nil},
		{"rs256 token to ec key", es, sign(t, jwt.SigningMethodRS256, k.rsa, claims("bob", time.Hour)), "", ErrInvalidToken},
		{"hs256 token to rsa-only", rs, sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", time.Hour)), "", ErrInvalidToken},
		{"es256 ok", es, sign(t, jwt.SigningMethodES256, k.ec, claims("carol", time.Hour)), "carol", nil},
		{"eddsa ok", ed, sign(t, jwt.SigningMethodEdDSA, k.ed, claims("dave", time.Hour)), "dave", nil},
		{"eddsa wrong key", ed, sign(t, jwt.SigningMethodEdDSA, mustEd(t), claims("dave", time.Hour)), "", ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Now = func() time.Time { return testNow }
			a, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Verify(tc.token)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Verify err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.UserID != tc.want || got.ExpiresAt.IsZero() {
				t.Fatalf("Verify = %+v, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func mustEd(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewRefuses(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{
		"nothing":   {},
		"small rsa": {PublicKey: &small.PublicKey},
		"p521":      {PublicKey: &p521.PublicKey},
		"private":   {PublicKey: crypto.PrivateKey(small)},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestMintRoundTrip(t *testing.T) {
	tok, err := Mint(testSecret, "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Verify(tok)
	if err != nil || p.UserID != "alice" {
		t.Fatalf("Verify = %+v, %v", p, err)
	}
	if d := time.Until(p.ExpiresAt); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("ExpiresAt %v is not an hour from now", p.ExpiresAt)
	}
	// Beyond ttl plus leeway it expires.
	a2, _ := New(Config{Secret: testSecret, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	if _, err := a2.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("later Verify err = %v, want ErrExpired", err)
	}
	for name, f := range map[string]func() (string, error){
		"short secret": func() (string, error) { return Mint([]byte("short"), "alice", time.Hour, testNow) },
		"bad user":     func() (string, error) { return Mint(testSecret, "", time.Hour, testNow) },
		"zero ttl":     func() (string, error) { return Mint(testSecret, "alice", 0, testNow) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: Mint succeeded", name)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	a, err := New(Config{Secret: testSecret, AdminKey: "admin-key-123"})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := Mint(testSecret, "alice", time.Hour, time.Now())
	other, _ := Mint(testSecret, "bob", time.Hour, time.Now())
	tests := []struct {
		name    string
		url     string
		header  map[string]string
		want    Principal
		wantErr error
	}{
		{"header", "/ws", map[string]string{"Authorization": "Bearer " + good}, Principal{UserID: "alice"}, nil},
		{"header lowercase scheme", "/ws", map[string]string{"Authorization": "bearer " + good}, Principal{UserID: "alice"}, nil},
		{"query", "/ws?access_token=" + good, nil, Principal{UserID: "alice"}, nil},
		{"header wins over query", "/ws?access_token=" + other, map[string]string{"Authorization": "Bearer " + good}, Principal{UserID: "alice"}, nil},
		{"none", "/ws", nil, Principal{}, ErrNoCredentials},
		{"basic scheme", "/ws", map[string]string{"Authorization": "Basic " + good}, Principal{}, ErrNoCredentials},
		{"bad token", "/ws", map[string]string{"Authorization": "Bearer x.y.z"}, Principal{}, ErrInvalidToken},
		{"admin bearer", "/api", map[string]string{"Authorization": "Bearer admin-key-123"}, Principal{Admin: true}, nil},
		{"admin header", "/api", map[string]string{AdminKeyHeader: "admin-key-123"}, Principal{Admin: true}, nil},
		{"admin acting as", "/api", map[string]string{AdminKeyHeader: "admin-key-123", ActAsHeader: "carol"}, Principal{UserID: "carol", Admin: true}, nil},
		{"admin acting as bad id", "/api", map[string]string{AdminKeyHeader: "admin-key-123", ActAsHeader: "a b"}, Principal{}, ErrInvalidToken},
		{"wrong admin header", "/api", map[string]string{AdminKeyHeader: "nope", "Authorization": "Bearer " + good}, Principal{}, ErrBadAdminKey},
		{"admin key in query is a bad token", "/api?access_token=admin-key-123x", nil, Principal{}, ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.url, nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			got, err := a.Authenticate(r)
			got.ExpiresAt = time.Time{} // checked in TestVerify
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Authenticate = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	// Without an admin key configured, no bearer value is an admin key.
	noAdmin, _ := New(Config{Secret: testSecret})
	r := httptest.NewRequest("GET", "/api", nil)
	r.Header.Set("Authorization", "Bearer ")
	if _, err := noAdmin.Authenticate(r); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("empty bearer: err = %v", err)
	}
}

func TestLoadPublicKey(t *testing.T) {
	k := newKeys(t)
	dir := t.TempDir()
	ecDER, _ := x509.MarshalPKIXPublicKey(&k.ec.PublicKey)
	files := map[string][]byte{
		"rsa.pem":   k.rsaPE,
		"pkcs1.pem": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}),
		"ec.pem":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}),
		"bad.pem":   []byte("hello"),
		"priv.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, wantOK := range map[string]bool{"rsa.pem": true, "pkcs1.pem": true, "ec.pem": true, "bad.pem": false, "priv.pem": false, "missing.pem": false} {
		key, err := LoadPublicKey(filepath.Join(dir, name))
		if (err == nil) != wantOK {
			t.Errorf("%s: err = %v", name, err)
			continue
		}
		if wantOK {
			if _, err := New(Config{PublicKey: key}); err != nil {
				t.Errorf("%s: New: %v", name, err)
			}
		}
	}
}
