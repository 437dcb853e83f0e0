package ws

import (
	"errors"
	"fmt"
	"net"
)

// Sentinel errors. Errors returned by Conn wrap one of these (test with
// errors.Is); errors that failed the connection also carry the close code that
// was sent, readable with CloseStatus.
var (
	// ErrClosed is returned by every operation on a Conn after its TCP
	// connection was closed, or after a close frame was sent (for writes).
	// It wraps net.ErrClosed so generic network code recognises it.
	ErrClosed = fmt.Errorf("ws: connection closed: %w", net.ErrClosed)

	// ErrProtocol means the peer broke the framing rules of RFC 6455
	// (or RFC 7692); the connection was failed with close code 1002.
	ErrProtocol = errors.New("ws: protocol error")

	// ErrInvalidUTF8 means a text message or a close reason was not valid
	// UTF-8; the connection was failed with close code 1007.
	ErrInvalidUTF8 = errors.New("ws: invalid UTF-8")

	// ErrMessageTooBig means a message exceeded the read limit (after
	// decompression); the connection was failed with close code 1009.
	ErrMessageTooBig = errors.New("ws: message too big")

	// ErrInvalidClose is returned by Close when asked to send a code that
	// must not appear on the wire, or a reason longer than 123 bytes or not
	// valid UTF-8. Nothing is sent.
	ErrInvalidClose = errors.New("ws: invalid close code or reason")

	// ErrPongTimeout means a heartbeat ping was not answered within the
	// pong timeout; the connection was closed.
	ErrPongTimeout = errors.New("ws: pong timeout")
)

// failError is a local failure of the connection: err says why (wrapping a
// sentinel), code is the close code sent to the peer.
type failError struct {
	code StatusCode
	err  error
}

func (e *failError) Error() string { return e.err.Error() }
func (e *failError) Unwrap() []error {
	return []error{e.err, &CloseError{Code: e.code}}
}

// protocolErr builds an error wrapping ErrProtocol. Only error paths call it,
// so the allocation does not matter.
func protocolErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// closeCodeFor maps an error from the parser or the decompressor to the close
// code the peer must receive.
func closeCodeFor(err error) StatusCode {
	switch {
	case errors.Is(err, ErrInvalidUTF8):
		return StatusInvalidPayload
	case errors.Is(err, ErrMessageTooBig):
		return StatusMessageTooBig
	case errors.Is(err, ErrProtocol):
		return StatusProtocolError
	}
	return StatusInternalError
}
