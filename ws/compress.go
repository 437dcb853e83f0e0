package ws

// CompressionMode selects whether and how permessage-deflate (RFC 7692) is
// used.
//
// The flate engines themselves (about 0.8-1.1 MiB each for compression,
// about 40 KiB for decompression) are pooled and borrowed only for the
// duration of one message, so they cost memory per message in flight, not per
// connection. What a connection keeps between messages is described on each
// mode.
type CompressionMode int

const (
	// CompressionDisabled never negotiates permessage-deflate. An idle
	// connection pays nothing for compression.
	CompressionDisabled CompressionMode = iota

	// CompressionContextTakeover keeps a sliding window between messages in
	// both directions: the best ratio for streams of similar small messages
	// (measured on ~400 byte JSON chat messages: 0.23 of the original size
	// against 0.57 without context), at a price per connection and per
	// message:
	//
	//   - memory: the last 2^bits bytes sent (bits = our negotiated window)
	//     and the last 2^bits bytes received (bits = the peer's window, at
	//     least 512 bytes), allocated at the first compressed message in each
	//     direction and kept for the life of the connection. With the
	//     default windows that is 32 KiB + 32 KiB per connection; lower
	//     ServerMaxWindowBits/ClientMaxWindowBits shrink it (13 bits: 8 KiB
	//     each way).
	//   - CPU: every compressed message first reloads the window into a
	//     pooled engine, which costs about as much as compressing the window
	//     itself (32 KiB window: ~7x the time of a 400 byte message without
	//     context; 8 KiB: ~3-4x).
	//
	// A server in this mode still honours a client that asks for
	// server_no_context_takeover (and then keeps nothing for that direction).
	CompressionContextTakeover

	// CompressionNoContextTakeover compresses each message on its own and
	// negotiates server_no_context_takeover and client_no_context_takeover, so
	// neither direction keeps history: no memory per connection while idle,
	// the same for any window size. Ratio on ~400 byte JSON chat messages:
	// 0.57 of the original size; larger messages compress about as well as
	// with context.
	CompressionNoContextTakeover
)

// CompressionOptions configures permessage-deflate. The zero value disables
// it.
type CompressionOptions struct {
	// Mode selects whether compression is negotiated and whether history is
	// kept between messages (which decides the per-connection memory, see
	// CompressionMode).
	Mode CompressionMode

	// Level is the flate level (1-9); 0 or out of range means 1 (fastest).
	// Levels 7-9 take 2.5-3x the time of level 1 for about 1% of ratio on
	// chat-sized messages. It applies when our window is 15 bits; smaller
	// windows use one bounded-window encoder (comparable to level 5)
	// whatever the level. No memory per connection (engines are pooled).
	Level int

	// Threshold is the smallest message size compressed; 0 means 128 bytes,
	// a negative value compresses every message. Smaller messages are sent
	// uncompressed: deflate's block overhead makes them grow or barely
	// shrink. No memory cost.
	Threshold int

	// ServerMaxWindowBits and ClientMaxWindowBits (8-15; 0 or out of range
	// means 15) bound the LZ77 windows of the server's and the client's
	// compressor.
	//
	// A client sends a value below 15 in its offer (server_max_window_bits
	// and client_max_window_bits), and compresses within the window the
	// server allows. A server uses them as upper bounds on what the client
	// offered: it compresses with min(ServerMaxWindowBits, the client's
	// server_max_window_bits), and when the client's offer allows it, asks
	// the client to compress within ClientMaxWindowBits. (A client that did
	// not offer client_max_window_bits cannot be restricted; it is accepted
	// anyway.)
	//
	// Memory: only in CompressionContextTakeover, each window costs 2^bits
	// bytes per connection for its direction (see CompressionMode); they
	// also bound the peer's memory for the same history.
	ServerMaxWindowBits int
	ClientMaxWindowBits int
}

// deflateParams are the negotiated permessage-deflate parameters, named from
// the wire: "server" parameters govern the messages the server sends.
type deflateParams struct {
	serverNoContextTakeover bool
	clientNoContextTakeover bool
	serverMaxWindowBits     int // 8..15
	clientMaxWindowBits     int // 8..15
}

const (
	minWindowBits = 8
	maxWindowBits = 15

	defaultLevel     = 1
	defaultThreshold = 128
)

// level returns the flate level to use.
func (o *CompressionOptions) level() int {
	if o.Level < 1 || o.Level > 9 {
		return defaultLevel
	}
	return o.Level
}

// threshold returns the smallest message size to compress.
func (o *CompressionOptions) threshold() int {
	switch {
	case o.Threshold == 0:
		return defaultThreshold
	case o.Threshold < 0:
		return 0
	}
	return o.Threshold
}

// windowBits normalizes a configured window: 0 or out of range means 15.
func windowBits(b int) int {
	if b < minWindowBits || b > maxWindowBits {
		return maxWindowBits
	}
	return b
}

// sendParams returns how a Conn in role r compresses what it sends: window
// bits and whether it keeps history between messages.
func (p *deflateParams) sendParams(r role) (bits int, contextTakeover bool) {
	if r == roleServer {
		return p.serverMaxWindowBits, !p.serverNoContextTakeover
	}
	return p.clientMaxWindowBits, !p.clientNoContextTakeover
}

// receiveParams returns how a Conn in role r decompresses what it receives:
// the peer's window bits and whether the peer may reference earlier messages.
func (p *deflateParams) receiveParams(r role) (bits int, contextTakeover bool) {
	if r == roleServer {
		return p.clientMaxWindowBits, !p.clientNoContextTakeover
	}
	return p.serverMaxWindowBits, !p.serverNoContextTakeover
}
