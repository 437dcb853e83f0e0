package chat

import "time"

// Metrics receives the service's measurements. The server registers an
// implementation backed by its metrics library (e.g. Prometheus counters
// and histograms); chat itself depends on none. Methods are called on hot
// paths from many goroutines: they must be cheap, non-blocking and safe for
// concurrent use.
type Metrics interface {
	// MessageIn counts a message accepted by Send (not duplicates).
	MessageIn()
	// MessageOut counts a message frame handed to a connection.
	MessageOut()
	// SendToAck observes the time from receiving a send to its ack (the
	// store append dominates it).
	SendToAck(d time.Duration)
	// SendToDeliver observes the time from receiving a send to handing it
	// to the broker for delivery, after in-order sequencing.
	SendToDeliver(d time.Duration)
	// Drop counts something shed under load; reason is one of
	// "slow_consumer" (a connection closed with 4009), "webhook_queue"
	// (an offline notification not queued), "webhook_failed" (given up
	// after retries).
	Drop(reason string)
	// StoreLatency observes one store call; op is the Store method name.
	StoreLatency(op string, d time.Duration)
}

// NopMetrics discards every measurement; it is the default.
type NopMetrics struct{}

// MessageIn discards the count.
func (NopMetrics) MessageIn() {}

// MessageOut discards the count.
func (NopMetrics) MessageOut() {}

// SendToAck discards the observation.
func (NopMetrics) SendToAck(time.Duration) {}

// SendToDeliver discards the observation.
func (NopMetrics) SendToDeliver(time.Duration) {}

// Drop discards the count.
func (NopMetrics) Drop(string) {}

// StoreLatency discards the observation.
func (NopMetrics) StoreLatency(string, time.Duration) {}
