package server

import (
	"sync"
	"time"

	"github.com/duplexhq/duplex/chat"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the Prometheus collectors of a duplex process. The transport
// updates the connection and frame counters itself; the latency histograms
// are fed by the chat service, for which Metrics implements chat.Metrics.
type Metrics struct {
	reg *prometheus.Registry

	connections   prometheus.Gauge
	connsTotal    prometheus.Counter
	framesIn      prometheus.Counter
	framesOut     prometheus.Counter
	queueDrops    prometheus.Counter
	messagesIn    prometheus.Counter
	messagesOut   prometheus.Counter
	drops         *prometheus.CounterVec
	apiRequests   *prometheus.CounterVec
	sendToAck     prometheus.Histogram
	sendToDeliver prometheus.Histogram
	storeLatency  *prometheus.HistogramVec
	// storeOps caches storeLatency's observer per op (a handful of Store
	// method names): two store calls per message would otherwise hash the
	// label and look it up under the vector's lock each time.
	storeOps sync.Map // op string -> prometheus.Observer
}

// latencyBuckets span 100µs to ~3s: an fsync-per-commit store sits in the
// low milliseconds, a congested fan-out in the hundreds.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 12)

// NewMetrics creates the collectors in a registry of their own (with the Go
// runtime and process collectors), so tests and several servers in one
// process do not collide in the global registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "duplex_connections", Help: "Open client connections.",
		}),
		connsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duplex_connections_total", Help: "Client connections accepted.",
		}),
		framesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duplex_frames_in_total", Help: "duplex.v1 frames received from clients.",
		}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duplex_frames_out_total", Help: "duplex.v1 frames written to clients.",
		}),
		queueDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duplex_queue_drops_total", Help: "Outbound frames refused because a connection's queue was full (slow consumers).",
		}),
		messagesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duplex_messages_in_total", Help: "Conversation messages accepted (duplicates excluded).",
		}),
		messagesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duplex_messages_out_total", Help: "Conversation message frames handed to connections.",
		}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duplex_drops_total", Help: "Work shed under load by reason (slow_consumer, webhook_queue, webhook_failed).",
		}, []string{"reason"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duplex_api_requests_total", Help: "HTTP API requests by route and status code.",
		}, []string{"route", "code"}),
		sendToAck: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "duplex_send_to_ack_seconds", Help: "Time from receiving a send to acknowledging it (message durable).",
			Buckets: latencyBuckets,
		}),
		sendToDeliver: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "duplex_send_to_deliver_seconds", Help: "Time from receiving a send to queueing it to a recipient connection.",
			Buckets: latencyBuckets,
		}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "duplex_store_seconds", Help: "Store operation latency by operation.",
			Buckets: latencyBuckets,
		}, []string{"op"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.connections, m.connsTotal, m.framesIn, m.framesOut, m.queueDrops,
		m.messagesIn, m.messagesOut, m.drops,
		m.apiRequests, m.sendToAck, m.sendToDeliver, m.storeLatency,
	)
	return m
}

// Registry returns the registry the collectors are in, for adding more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var _ chat.Metrics = (*Metrics)(nil)

// MessageIn counts a message accepted by the chat service.
func (m *Metrics) MessageIn() { m.messagesIn.Inc() }

// MessageOut counts a message frame handed to a connection.
func (m *Metrics) MessageOut() { m.messagesOut.Inc() }

// SendToAck records the time a send took to be acknowledged.
func (m *Metrics) SendToAck(d time.Duration) { m.sendToAck.Observe(d.Seconds()) }

// SendToDeliver records the time from a send to its hand-off for delivery.
func (m *Metrics) SendToDeliver(d time.Duration) { m.sendToDeliver.Observe(d.Seconds()) }

// Drop counts something the chat service shed under load.
func (m *Metrics) Drop(reason string) { m.drops.WithLabelValues(reason).Inc() }

// StoreLatency records the latency of one store operation.
func (m *Metrics) StoreLatency(op string, d time.Duration) {
	o, ok := m.storeOps.Load(op)
	if !ok {
		o, _ = m.storeOps.LoadOrStore(op, m.storeLatency.WithLabelValues(op))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}
