package protocol

// Code is a stable machine-readable error code carried by "error" frames
// and HTTP API error bodies. Clients branch on codes, never on messages.
type Code string

// Error codes. Their meaning is part of the duplex.v1 contract.
const (
	CodeBadRequest         Code = "bad_request"          // well-formed JSON, invalid request (wrong field type, bad value)
	CodeUnknownType        Code = "unknown_type"         // "type" is not a duplex.v1 request type
	CodeInvalidJSON        Code = "invalid_json"         // the frame is not valid JSON
	CodeMissingField       Code = "missing_field"        // a required field is absent or empty
	CodeTooLarge           Code = "too_large"            // frame, body, meta or data over its limit
	CodeRateLimited        Code = "rate_limited"         // request refused by a rate limit; retry later
	CodeUnauthorized       Code = "unauthorized"         // no or invalid credentials
	CodeForbidden          Code = "forbidden"            // visible resource, action not allowed for the caller
	CodeNotFound           Code = "not_found"            // no such resource, or one the caller may not see
	CodeConflict           Code = "conflict"             // contradicts the current state
	CodeTooManyConnections Code = "too_many_connections" // per-user connection limit reached
	CodeInternal           Code = "internal"             // server fault; safe to retry idempotent requests
	CodeUnavailable        Code = "unavailable"          // server shutting down or dependency down; retry later
)

// Close codes used by duplex.v1 when the server ends a connection. The
// 4000-4999 range is reserved by RFC 6455 for applications; docs/protocol.md
// tells clients what to do after each.
const (
	CloseNormal         = 1000 // normal closure
	CloseGoingAway      = 1001 // server shutting down: reconnect with backoff, then sync
	ClosePolicy         = 1008 // protocol abuse: fix the client, do not retry blindly
	CloseTooBig         = 1009 // frame over the size limit
	CloseInternal       = 1011 // server fault: reconnect with backoff, then sync
	CloseAuthFailed     = 4000 // credentials rejected: do not retry with the same token
	CloseTokenExpired   = 4001 // token expired: refresh it, then reconnect and sync
	CloseRateLimited    = 4008 // kept exceeding the rate limit: back off, then reconnect
	CloseSlowConsumer   = 4009 // could not keep up: reconnect with backoff and sync; nothing is lost
	CloseTooManyConns   = 4010 // per-user connection limit: close another device first
	CloseSessionRevoked = 4011 // the server ended this session (e.g. user disabled): do not retry automatically
)
