package ws

import (
	"errors"
	"fmt"
)

// MessageType is the type of a WebSocket data message.
type MessageType int

// The data message types of RFC 6455 section 5.6.
const (
	MessageText   MessageType = 1
	MessageBinary MessageType = 2
)

func (t MessageType) String() string {
	switch t {
	case MessageText:
		return "text"
	case MessageBinary:
		return "binary"
	}
	return fmt.Sprintf("MessageType(%d)", int(t))
}

// StatusCode is a close status code (RFC 6455 section 7.4).
type StatusCode int

// Close status codes. Codes marked "never sent" are reported locally only.
const (
	StatusNormalClosure   StatusCode = 1000
	StatusGoingAway       StatusCode = 1001
	StatusProtocolError   StatusCode = 1002
	StatusUnsupportedData StatusCode = 1003
	StatusNoStatusRcvd    StatusCode = 1005 // never sent
	StatusAbnormalClosure StatusCode = 1006 // never sent
	StatusInvalidPayload  StatusCode = 1007
	StatusPolicyViolation StatusCode = 1008
	StatusMessageTooBig   StatusCode = 1009
	StatusMandatoryExt    StatusCode = 1010
	StatusInternalError   StatusCode = 1011
	StatusTLSHandshake    StatusCode = 1015 // never sent
)

// CloseError is returned by reads after the peer sent a close frame, or after
// the connection was failed locally with a code.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("ws: closed with status %d %q", int(e.Code), e.Reason)
}

// CloseStatus returns the close code carried by err, or -1 when err is not
// (and does not wrap) a *CloseError.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}
