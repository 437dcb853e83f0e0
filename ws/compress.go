package ws

// CONTRACT STUB written by the lead; the owner of permessage-deflate fills it
// in (and removes this comment).

// CompressionMode selects whether and how permessage-deflate is used.
type CompressionMode int

const (
	// CompressionDisabled never negotiates permessage-deflate.
	CompressionDisabled CompressionMode = iota
	// CompressionContextTakeover keeps a sliding window between messages:
	// best ratio, costs the negotiated window (up to 32 KiB) per direction
	// per connection.
	CompressionContextTakeover
	// CompressionNoContextTakeover compresses each message on its own with
	// pooled engines: no per-connection cost while idle.
	CompressionNoContextTakeover
)

// CompressionOptions configures permessage-deflate.
type CompressionOptions struct {
	Mode CompressionMode
	// Level is the flate level (1-9); default 1 (fastest).
	Level int
	// Threshold is the smallest message size compressed; default 128 bytes.
	Threshold int
	// ServerMaxWindowBits and ClientMaxWindowBits (8-15; 0 means 15) bound the
	// LZ77 windows; a client sends them in its offer, a server uses them as
	// its upper bound when answering.
	ServerMaxWindowBits int
	ClientMaxWindowBits int
}

// deflateParams are the negotiated permessage-deflate parameters.
type deflateParams struct {
	serverNoContextTakeover bool
	clientNoContextTakeover bool
	serverMaxWindowBits     int // 8..15
	clientMaxWindowBits     int // 8..15
}
