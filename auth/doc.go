// Package auth authenticates duplex callers: end users with JWT bearer
// tokens (HS256 with a shared secret, or RS256/ES256/EdDSA verified with a
// public key), and server-side callers with an admin API key.
//
// Tokens are read from the Authorization header ("Bearer <token>") or, for
// browsers, which cannot set headers on a WebSocket handshake, from the
// access_token query parameter. A token in a URL can end up in proxy and
// access logs and in browser history; duplex itself never logs query
// strings, and deployments should keep token lifetimes short and make sure
// proxies in front of it do not log them either.
//
// The token's "sub" claim is the user id. "exp" is required and, like "nbf",
// is checked with a small leeway for clock skew.
package auth
