package server

import (
	"errors"

	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/protocol"
)

// chatError extracts the stable code and client-facing message from an
// error of the chat service.
func chatError(err error) (protocol.Code, string, bool) {
	var ce *chat.Error
	if !errors.As(err, &ce) {
		return "", "", false
	}
	if ce.Code == protocol.CodeInternal {
		return ce.Code, "internal error", true
	}
	return ce.Code, ce.Message, true
}
