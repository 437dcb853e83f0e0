// Package memory is the single-node broker.Broker: subjects map to
// in-process subscribers, each served by its own goroutine from a bounded
// queue.
//
// Delivery is asynchronous, as with the networked engines: Publish copies
// the payload into a pooled buffer shared by the subject's subscribers,
// offers it to each subscriber's queue without blocking, and returns. A
// subscriber whose queue is full misses that payload (the contract is at
// most once): the drop is counted (Stats) and logged, and no publisher or
// other subscriber is slowed by it. Each subscriber receives the payloads
// of one publisher on one subject in publish order.
//
// SubscribeSync is the exception, for handlers that never block (the hub's
// fan-out to connection queues): Publish calls them itself, on the
// publishing goroutine, which saves a goroutine hand-off per delivery.
package memory
