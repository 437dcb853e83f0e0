package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the shortest HS256 secret Mint accepts: shorter secrets can
// be brute-forced offline from any token.
const MinSecretLen = 32

// Mint returns an HS256 token for userID valid for ttl from now. It is what
// `duplex token` and the development login use; production deployments
// usually mint tokens in their own backend with the same secret.
func Mint(secret []byte, userID string, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("auth: secret shorter than %d bytes", MinSecretLen)
	}
	if err := ValidUserID(userID); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	if ttl <= 0 {
		return "", errors.New("auth: ttl must be positive")
	}
	claims := jwt.RegisteredClaims{
		Subject:   userID,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}
