// Package chat is the heart of duplex: conversations, persistence-first
// message delivery, sequencing, cursors, receipts, typing, presence and
// channels, behind the API that transports and the HTTP API call.
//
// A send is appended to the store (which assigns the conversation's next
// seq in the same transaction), acknowledged to the sender, and only then
// published on the broker to every member's user subject; each node's hub
// hands it to that user's local sessions. Deliveries of one conversation
// leave a node in seq order (see sequencer), and sessions suppress live
// messages of a conversation while they replay it from the store, so a
// client sees each conversation's messages in seq order. That includes
// the acks of its own sends: a session that does not hold seq n-1 yet
// gets the ack of n published on its user subject behind n-1 instead of
// at once, so it never mistakes an ack for a gap.
//
// Clients without a two-way connection (the HTTP fallback transports) use
// Fallback: Do answers one request on any node without a session,
// DoSession forwards the requests that act on an event-stream session to
// the node holding it through the broker, and Poll answers a long-poll
// from the client's cursors, so no node keeps state for such a client
// between its requests.
//
// Lock order: sequencer.mu before seqKey.mu; a seqKey.mu may be held while
// a session's mu is taken (a broker that delivers synchronously calls
// Deliver from Publish), never the reverse. Service.mu and session.mu are
// never held together. Nothing holds a lock while calling the store.
package chat
