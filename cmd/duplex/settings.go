package main

import (
	"crypto"
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/ws"
)

// security is what the configuration decides about authentication.
type security struct {
	dev    bool
	secret []byte           // HS256; nil when only a public key is used
	pub    crypto.PublicKey // nil unless --jwt-public-key
}

// resolveSecurity decides development mode and loads keys. Development mode
// is what --dev says when given; otherwise it is on exactly when no key was
// configured and the address is loopback. A server reachable from other
// machines never runs without real tokens unless --dev was given
// explicitly.
func resolveSecurity(c *config) (security, error) {
	loopback, err := isLoopback(c.Addr)
	if err != nil {
		return security{}, err
	}
	keys := c.JWTSecret != "" || c.JWTPublicKey != ""
	var sec security
	switch {
	case c.devSet:
		sec.dev = c.Dev
	case !keys && loopback:
		sec.dev = true
	case !keys:
		return security{}, fmt.Errorf("listening on %s (not loopback) needs --jwt-secret or --jwt-public-key; pass --dev to run the insecure development mode there anyway", c.Addr)
	}
	if c.JWTPublicKey != "" {
		if sec.pub, err = auth.LoadPublicKey(c.JWTPublicKey); err != nil {
			return security{}, err
		}
	}
	// A secret is needed for HS256 tokens and for minting in development
	// mode; with only a public key and no dev mode there is none.
	if c.JWTSecret != "" || c.JWTPublicKey == "" || sec.dev {
		if sec.secret, err = resolveSecret(c); err != nil {
			return security{}, err
		}
	}
	return sec, nil
}

// compression parses --compression.
func compression(s string) (ws.CompressionOptions, error) {
	switch s {
	case "off", "":
		return ws.CompressionOptions{Mode: ws.CompressionDisabled}, nil
	case "no-context-takeover":
		return ws.CompressionOptions{Mode: ws.CompressionNoContextTakeover}, nil
	case "context-takeover":
		return ws.CompressionOptions{Mode: ws.CompressionContextTakeover}, nil
	}
	return ws.CompressionOptions{}, fmt.Errorf("--compression: %q is not off, no-context-takeover or context-takeover", s)
}

// namespaces parses --channels: comma-separated entries
// "name=perm+perm+...", perms being subscribe, publish and history:N.
// The name "default" stands for channel names without a namespace.
func namespaces(s string) (map[string]chat.Namespace, error) {
	out := map[string]chat.Namespace{}
	for _, ent := range splitList(s) {
		name, perms, _ := strings.Cut(ent, "=")
		name = strings.TrimSpace(name)
		if name == "default" {
			name = ""
		}
		var ns chat.Namespace
		for _, p := range strings.Split(perms, "+") {
			switch p = strings.TrimSpace(p); {
			case p == "subscribe":
				ns.Subscribe = true
			case p == "publish":
				ns.Publish = true
			case strings.HasPrefix(p, "history:"):
				n, err := strconv.Atoi(p[len("history:"):])
				if err != nil || n < 0 || n > chat.MaxChannelHistory {
					return nil, fmt.Errorf("--channels %q: history must be 0..%d", ent, chat.MaxChannelHistory)
				}
				ns.History = n
			case p == "":
			default:
				return nil, fmt.Errorf("--channels %q: unknown permission %q (subscribe, publish, history:N)", ent, p)
			}
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--channels: namespace %q given twice", name)
		}
		out[name] = ns
	}
	return out, nil
}

// loadTLS loads --tls-cert and --tls-key; both or neither must be given.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS key pair: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
