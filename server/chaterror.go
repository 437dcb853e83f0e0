package server

import "github.com/duplexhq/duplex/protocol"

// chatError extracts the stable code and message from an error of the chat
// service.
func chatError(err error) (protocol.Code, string, bool) {
	return "", "", false
}
