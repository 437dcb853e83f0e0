// Package server is duplex's HTTP front end: the transports that carry
// duplex.v1 frames between clients and the chat service (WebSocket, and
// the fallbacks Server-Sent Events and long-polling with single requests
// over HTTP), the JSON HTTP API, health and readiness probes, Prometheus
// metrics and the web client (package web) served from the binary.
//
// # Routes
//
//	GET    /ws                                      WebSocket (subprotocol duplex.v1)
//	GET    /sse                                     Server-Sent Events: a session's frames as events
//	POST   /rpc[?session=<id>]                      one request frame -> {"frames":[...]}
//	POST   /poll                                    {cursors, channels, wait_ms} -> {"frames":[...]}
//	GET    /api/info                                {dev, transports, version} (no authentication)
//	POST   /api/conversations/direct                {peer}
//	POST   /api/conversations/group                 {title, members}
//	GET    /api/conversations
//	POST   /api/conversations/{id}/members          {user}
//	DELETE /api/conversations/{id}/members/{user}
//	POST   /api/conversations/{id}/messages         {client_msg_id, body, meta}
//	GET    /api/conversations/{id}/messages?before=&limit=
//	POST   /api/channels/{name}/publish             {data}
//	GET    /api/presence?users=a,b
//	POST   /api/dev/login                           {user} -> {token} (development mode only)
//	GET    /healthz                                 process alive
//	GET    /readyz                                  store reachable and not shutting down
//	GET    /metrics                                 Prometheus
//	GET    /, /duplex.js, /duplex.d.ts, /chat.js, /chat.css   web client
//
// # Authentication
//
// Every /ws and /api request carries a JWT bearer token (package auth) in
// the Authorization header or, for browsers, in the access_token query
// parameter; server-side callers may use the admin key instead. Failures
// are answered with 401 and a JSON error body, except on a valid WebSocket
// upgrade: that is accepted and closed at once with 4000 (authentication
// failed) or 4001 (token expired), since a browser cannot see the status
// of a refused handshake and would retry it for ever. The server never logs query strings, so tokens passed in URLs do
// not reach its logs (proxies in front of it must be configured likewise).
//
// # Fallback transports
//
// SSE and long-polling keep no state between requests that would tie a
// client to a node: /rpc requests are answered by chat.Fallback.Do on any
// node, the ones that act on an SSE session (subscribe, unsubscribe) are
// forwarded through the broker to the node holding it, and every poll
// carries the client's cursors. The stream and waiting polls outlive the
// http.Server's timeouts (they clear the read deadline and extend the
// write deadline per write) and end when shutdown begins. Config.Transports
// disables transports (404 with a JSON error). docs/protocol.md §12 is
// the client's view.
//
// # Subprotocol
//
// duplex.v1 is the only subprotocol. A client that offers subprotocols
// must include duplex.v1 (it is refused with 400 otherwise, rather than
// being connected to a protocol it did not ask for); a client that offers
// none is served duplex.v1 by default, so quick tools such as websocat work.
//
// # Idle connections cost no goroutine
//
// WebSocket clients are read by one ws.Poller (epoll on Linux; a goroutine
// per connection elsewhere and for TLS), so an idle client costs its
// records, about 4.3 KiB of live heap with its session
// (bench/run-serve-idle.sh), and no goroutine or stack. A frame read is queued on its connection and handled by a
// goroutine that runs while the connection's queue is not empty: handling
// may wait (a send for its commit), which a Poller worker must not. A
// client that keeps more than 64 frames (or 256 KiB) waiting is paused,
// left to TCP flow control, until half of them are handled. Outbound
// frames are written by a goroutine that likewise runs only while frames
// are queued.
//
// # Outbound queue and slow consumers
//
// Every connection (WebSocket or SSE stream) has a bounded queue of
// outbound frames drained by its writer. The chat service's Send never
// blocks: when the queue is full it reports false and the chat closes the connection with its
// slow-consumer code; the frames still queued are then dropped (the client
// recovers them with sync), whereas on other closes (e.g. 1001 at shutdown)
// they are flushed first, within a bounded time.
package server
