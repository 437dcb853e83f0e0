// Package protocol defines duplex.v1, the JSON wire protocol spoken between
// duplex clients and the server over WebSocket text frames (and the other
// transports that carry the same frames).
//
// Client-to-server frames are requests: a JSON object with a "type" and a
// client-chosen "id"; every reply ("ack", "result", "sync.end") and every
// "error" caused by a request carries that id. Server-pushed events carry no
// id. Decode parses requests strictly (unknown types, missing required
// fields, wrong JSON types and oversize frames are rejected with a stable
// machine-readable Code) and never panics; the encoders build each outbound
// frame once so the same bytes can be fanned out to every recipient.
//
// The human-readable specification is docs/protocol.md.
package protocol
