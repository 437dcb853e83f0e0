// Package interop proves that package ws speaks the same WebSocket protocol
// as other implementations: gorilla/websocket, coder/websocket, lxzan/gws and
// a real Chromium browser, with and without permessage-deflate.
//
// Each peer is paired with our server (ws.Accept) and our client (ws.Dial)
// for every compression setting the peer supports: no compression, context
// takeover, no context takeover and bounded windows. One side runs the
// scenarios (messages of every frame-length class up to 1 MiB, a burst of
// similar messages, pings both ways, close handshakes started by either
// side), the other echoes; the burst also checks, from the bytes our side
// put on the wire, that negotiated compression really happens. Other tests
// cover bad input from a peer (the close code each side sees), control
// frames inside fragmented messages, concurrent writers on one compressed
// connection, subprotocols, heartbeats, TLS, and in the browser cross-origin
// refusal and the read limit.
//
// It is a separate module so that the peers stay test-only dependencies of
// this module and never reach the main go.mod. All of its content is tests;
// run them with
//
//	cd interop && go test -race ./...
//
// The browser test needs /usr/bin/chromium (Debian's chromium package); it
// skips without it, and fails instead when DUPLEX_REQUIRE_SERVICES=1.
package interop
