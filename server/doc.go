// Package server is duplex's HTTP front end: the WebSocket transport that
// carries duplex.v1 frames between clients and the chat service, the JSON
// HTTP API, health and readiness probes, Prometheus metrics and the
// placeholder web page.
//
// # Routes
//
//	GET    /ws                                      WebSocket (subprotocol duplex.v1)
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
//	GET    /                                        web page
//
// # Authentication
//
// Every /ws and /api request carries a JWT bearer token (package auth) in
// the Authorization header or, for browsers, in the access_token query
// parameter; server-side callers may use the admin key instead. Failures
// are answered before any WebSocket handshake with 401 and a JSON error
// body. The server never logs query strings, so tokens passed in URLs do
// not reach its logs (proxies in front of it must be configured likewise).
//
// # Subprotocol
//
// duplex.v1 is the only subprotocol. A client that offers subprotocols
// must include duplex.v1 (it is refused with 400 otherwise, rather than
// being connected to a protocol it did not ask for); a client that offers
// none is served duplex.v1 by default, so quick tools such as websocat work.
//
// # Outbound queue and slow consumers
//
// Every connection has a bounded queue of outbound frames drained by one
// writer goroutine. The chat service's Send never blocks: when the queue is
// full it reports false and the chat closes the connection with its
// slow-consumer code; the frames still queued are then dropped (the client
// recovers them with sync), whereas on other closes (e.g. 1001 at shutdown)
// they are flushed first, within a bounded time.
package server
