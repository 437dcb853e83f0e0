package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Errors returned (wrapped) by Verify and Authenticate.
var (
	// ErrNoCredentials means the request carried neither a token nor an
	// admin key.
	ErrNoCredentials = errors.New("auth: no credentials")
	// ErrInvalidToken means the token is malformed, has a bad signature, an
	// algorithm we do not accept, or unacceptable claims.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrExpired means the token's exp has passed (beyond the leeway).
	ErrExpired = errors.New("auth: token expired")
	// ErrBadAdminKey means X-Duplex-Admin-Key was present but wrong.
	ErrBadAdminKey = errors.New("auth: bad admin key")
)

// DefaultLeeway is the clock skew tolerated on exp and nbf.
const DefaultLeeway = 30 * time.Second

// MaxUserIDLen bounds the length in bytes of a token's sub claim.
const MaxUserIDLen = 128

// QueryParam is the query parameter carrying a token for browsers.
const QueryParam = "access_token"

// AdminKeyHeader carries the admin API key (as does "Authorization: Bearer").
const AdminKeyHeader = "X-Duplex-Admin-Key"

// ActAsHeader lets an admin caller act as a given user id.
const ActAsHeader = "X-Duplex-User"

// Config configures an Authenticator. At least one of Secret and PublicKey
// must be set.
type Config struct {
	// Secret verifies HS256 tokens (and is what Mint signs with).
	Secret []byte
	// PublicKey verifies asymmetric tokens: an *rsa.PublicKey (RS256), an
	// *ecdsa.PublicKey on P-256 (ES256) or P-384 (ES384), or an
	// ed25519.PublicKey (EdDSA). Only the algorithm matching the key is
	// accepted, so a token "signed" with HS256 using the public key as the
	// secret is refused.
	PublicKey crypto.PublicKey
	// AdminKey, when non-empty, authenticates server-side callers.
	AdminKey string
	// Leeway overrides DefaultLeeway.
	Leeway time.Duration
	// Now overrides time.Now (tests).
	Now func() time.Time
}

// Principal is an authenticated caller.
type Principal struct {
	// UserID is the token's sub; for an admin caller it is the value of
	// ActAsHeader, possibly empty.
	UserID string
	// Admin is set for callers that presented the admin key.
	Admin bool
	// ExpiresAt is the token's expiry; zero for admin callers, whose key
	// does not expire.
	ExpiresAt time.Time
}

// Authenticator verifies tokens and admin keys. It is safe for concurrent
// use.
type Authenticator struct {
	secret   []byte
	pub      crypto.PublicKey
	pubAlg   string
	adminKey []byte
	parser   *jwt.Parser
}

// New returns an Authenticator for cfg.
func New(cfg Config) (*Authenticator, error) {
	a := &Authenticator{secret: cfg.Secret, pub: cfg.PublicKey}
	if cfg.AdminKey != "" {
		a.adminKey = []byte(cfg.AdminKey)
	}
	var methods []string
	if len(cfg.Secret) > 0 {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.PublicKey != nil {
		alg, err := algForKey(cfg.PublicKey)
		if err != nil {
			return nil, err
		}
		a.pubAlg = alg
		methods = append(methods, alg)
	}
	if len(methods) == 0 {
		return nil, errors.New("auth: need a secret or a public key")
	}
	leeway := cfg.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(leeway),
		jwt.WithExpirationRequired(),
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// algForKey returns the one JWS algorithm we accept for key.
func algForKey(key crypto.PublicKey) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("auth: RSA key of %d bits is too small (need 2048)", k.N.BitLen())
		}
		return jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jwt.SigningMethodES256.Alg(), nil
		case elliptic.P384():
			return jwt.SigningMethodES384.Alg(), nil
		}
		return "", fmt.Errorf("auth: unsupported ECDSA curve %s", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return jwt.SigningMethodEdDSA.Alg(), nil
	}
	return "", fmt.Errorf("auth: unsupported public key type %T", key)
}

// keyFor picks the verification key by the token's algorithm; the parser
// has already refused algorithms outside the configured set.
func (a *Authenticator) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	switch {
	case alg == jwt.SigningMethodHS256.Alg() && len(a.secret) > 0:
		return a.secret, nil
	case alg == a.pubAlg && a.pub != nil:
		return a.pub, nil
	}
	return nil, fmt.Errorf("algorithm %q not accepted", alg)
}

// Verify checks token and returns the user it was issued to.
func (a *Authenticator) Verify(token string) (Principal, error) {
	var claims jwt.RegisteredClaims
	_, err := a.parser.ParseWithClaims(token, &claims, a.keyFor)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Principal{}, fmt.Errorf("%w: %v", ErrExpired, err)
		}
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if err := ValidUserID(claims.Subject); err != nil {
		return Principal{}, fmt.Errorf("%w: sub: %v", ErrInvalidToken, err)
	}
	// WithExpirationRequired guarantees ExpiresAt is set.
	return Principal{UserID: claims.Subject, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// ValidUserID reports why id cannot be a user id, or nil: it must be
// non-empty UTF-8 of at most MaxUserIDLen bytes without spaces or control
// characters (ids appear in URLs, logs and presence keys).
func ValidUserID(id string) error {
	switch {
	case id == "":
		return errors.New("empty user id")
	case len(id) > MaxUserIDLen:
		return fmt.Errorf("user id longer than %d bytes", MaxUserIDLen)
	case !utf8.ValidString(id):
		return errors.New("user id is not valid UTF-8")
	}
	for _, r := range id {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' || r == ',' {
			return fmt.Errorf("user id contains %q", r)
		}
	}
	return nil
}

// Authenticate returns the caller of r: an admin caller when r carries the
// admin key (in AdminKeyHeader or as the bearer token), otherwise the user
// of the bearer token from the Authorization header or the access_token
// query parameter.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if k := r.Header.Get(AdminKeyHeader); k != "" {
		if !a.isAdminKey(k) {
			return Principal{}, ErrBadAdminKey
		}
		return a.admin(r)
	}
	tok := bearer(r.Header.Get("Authorization"))
	if tok == "" {
		tok = r.URL.Query().Get(QueryParam)
	}
	if tok == "" {
		return Principal{}, ErrNoCredentials
	}
	if a.isAdminKey(tok) {
		return a.admin(r)
	}
	return a.Verify(tok)
}

func (a *Authenticator) admin(r *http.Request) (Principal, error) {
	p := Principal{Admin: true}
	if u := r.Header.Get(ActAsHeader); u != "" {
		if err := ValidUserID(u); err != nil {
			return Principal{}, fmt.Errorf("%w: %s: %v", ErrInvalidToken, ActAsHeader, err)
		}
		p.UserID = u
	}
	return p, nil
}

// isAdminKey compares in constant time so the key cannot be guessed byte by
// byte from response timings.
func (a *Authenticator) isAdminKey(k string) bool {
	return a.adminKey != nil && subtle.ConstantTimeCompare([]byte(k), a.adminKey) == 1
}

// bearer extracts the token from an Authorization header value.
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
