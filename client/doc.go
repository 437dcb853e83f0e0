// Package client is the Go client of the duplex.v1 protocol: the same
// guarantees as the JavaScript client, for Go programs (the CLI's connect
// and bench commands and the integration tests use it).
//
// A Client connects over WebSocket and keeps connecting: it reconnects with
// exponential backoff and full jitter, honouring the server's close codes;
// after every connect it resumes each conversation with sync from the last
// sequence number it holds, so Events delivers every message exactly once
// and in order per conversation; Send queues messages while disconnected
// and retransmits unacknowledged ones with the same client message id,
// which the server's idempotency turns into the original acknowledgement.
// Messages are sent in order; one refused with a retryable error (e.g.
// rate_limited) is sent again after a pause and may then follow messages
// queued after it.
//
// The frames of every message (ack, message, sync.end, result, error,
// receipt, typing) are decoded in one pass without reflection (wire.go;
// encoding/json decodes anything else, and any frame that decoder is not
// sure of), and sends are encoded into a reused buffer; sends queued while
// another goroutine is writing go out together in one write. Programs that
// run many clients at high rates (load generators, bots) can go further:
// SendFunc reports results by callback instead of a channel, OnEvent takes
// events by callback instead of the Events channel, and Options.Poller
// reads all their connections with one ws.Poller instead of a goroutine
// each. `duplex bench` does all three.
//
//	c := client.New(client.Options{URL: "ws://127.0.0.1:8080/ws", Token: tok})
//	go c.Run(ctx)
//	ack, err := c.Send(ctx, conv, "", "hello", nil) // "" = new client message id
//	for ev := range c.Events() {
//		if ev.Message != nil { fmt.Println(ev.Message.Sender, ev.Message.Body) }
//	}
package client
