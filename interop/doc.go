// Package interop proves that package ws speaks the same WebSocket protocol
// as other implementations: gorilla/websocket, coder/websocket, lxzan/gws and
// a real Chromium browser, with and without permessage-deflate.
//
// It is a separate module so that those peers stay test-only dependencies of
// this module and never reach the main go.mod. All of its content is tests;
// run them with
//
//	cd interop && go test -race ./...
//
// The browser test needs /usr/bin/chromium (Debian's chromium package); it
// skips without it, and fails instead when DUPLEX_REQUIRE_SERVICES=1.
package interop
