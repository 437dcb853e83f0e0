package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/duplexhq/duplex/auth"
)

// token mints an HS256 token with the configured secret: --jwt-secret or
// the secret generated in the data directory (created if absent, so the
// server started later accepts the token).
func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("duplex token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	commonFlags(fs, &c)
	user := fs.String("user", "", "user id (the token's sub)")
	ttl := fs.Duration("ttl", 24*time.Hour, "token lifetime")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *user == "" {
		fmt.Fprintln(stderr, "duplex token: --user is required")
		fs.Usage()
		return errUsage
	}
	secret, err := resolveSecret(&c)
	if err != nil {
		return err
	}
	tok, err := auth.Mint(secret, *user, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// resolveSecret returns --jwt-secret, or the data directory's generated
// secret.
func resolveSecret(c *config) ([]byte, error) {
	if c.JWTSecret != "" {
		if len(c.JWTSecret) < auth.MinSecretLen {
			return nil, fmt.Errorf("--jwt-secret: shorter than %d bytes", auth.MinSecretLen)
		}
		return []byte(c.JWTSecret), nil
	}
	return loadOrCreateSecret(c.DataDir)
}
