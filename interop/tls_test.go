package interop

import (
	"testing"

	"github.com/duplexhq/duplex/ws"
)

// TestTLS runs the scenarios over wss:// with httptest's certificate, with
// context takeover on, in both roles.
func TestTLS(t *testing.T) {
	ctx := ws.CompressionOptions{Mode: ws.CompressionContextTakeover}
	ourServerSide := ourSide{compression: ctx, tls: true}
	ourClientSide := ourSide{compression: ctx}
	t.Run("gorilla-client-our-server", func(t *testing.T) {
		ourServerPair(t, ourServerSide, wantServerNoCtx, dialGorilla(true)).run(t)
	})
	t.Run("coder-client-our-server", func(t *testing.T) {
		ourServerPair(t, ourServerSide, wantCtx, dialCoder(coderCtx)).run(t)
	})
	t.Run("our-client-gorilla-server", func(t *testing.T) {
		ourClientPair(gorillaServer(t, true, true), ourClientSide, wantNoCtx).run(t)
	})
	t.Run("our-client-coder-server", func(t *testing.T) {
		ourClientPair(coderServer(t, coderCtx, true), ourClientSide, wantCtx).run(t)
	})
}
