// Package ws implements the WebSocket protocol (RFC 6455) for servers and
// clients, with the permessage-deflate extension (RFC 7692).
//
// It is strict by default: every handshake requirement is checked, text
// messages are validated as UTF-8 incrementally (failing with 1007 at the
// first bad byte), frames that break the framing rules fail the connection
// with 1002, and messages over the read limit fail with 1009 (the limit
// applies to the decompressed size).
//
// A server accepts from an http.Handler:
//
//	func handler(w http.ResponseWriter, r *http.Request) {
//		c, err := ws.Accept(w, r, nil)
//		if err != nil {
//			return // Accept has already written the HTTP error
//		}
//		defer c.CloseNow()
//		for {
//			typ, p, err := c.Read(r.Context())
//			if err != nil {
//				return
//			}
//			if err := c.Write(r.Context(), typ, p); err != nil {
//				return
//			}
//		}
//	}
//
// A client dials:
//
//	c, _, err := ws.Dial(ctx, "wss://example.com/ws", nil)
//
// One goroutine may read while any number of goroutines write: writes are
// serialized by the Conn.
//
// A server holding many mostly idle connections can hand them to a Poller
// instead of reading each in its own goroutine: on Linux it reads them from
// an epoll loop with a few workers and calls a Handler per message, so an
// idle connection costs about 3 KiB instead of a goroutine stack and its
// buffers (see Poller).
package ws
