package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the Prometheus collectors of a duplex process. The transport
// updates the connection and frame counters itself; the latency histograms
// are fed by the chat service through the Observe methods.
type Metrics struct {
	reg *prometheus.Registry

	connections   prometheus.Gauge
	connsTotal    prometheus.Counter
	framesIn      prometheus.Counter
	framesOut     prometheus.Counter
	queueDrops    prometheus.Counter
	apiRequests   *prometheus.CounterVec
	sendToAck     prometheus.Histogram
	sendToDeliver prometheus.Histogram
	storeLatency  *prometheus.HistogramVec
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
		m.apiRequests, m.sendToAck, m.sendToDeliver, m.storeLatency,
	)
	return m
}

// Registry returns the registry the collectors are in, for adding more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveSendToAck records the time a send took to be acknowledged.
func (m *Metrics) ObserveSendToAck(d time.Duration) { m.sendToAck.Observe(d.Seconds()) }

// ObserveSendToDeliver records the time from a send to one recipient's
// queue.
func (m *Metrics) ObserveSendToDeliver(d time.Duration) { m.sendToDeliver.Observe(d.Seconds()) }

// ObserveStore records the latency of one store operation.
func (m *Metrics) ObserveStore(op string, d time.Duration) {
	m.storeLatency.WithLabelValues(op).Observe(d.Seconds())
}

// ObserveQueueDrop counts a frame refused by a full outbound queue (for
// transports other than the built-in WebSocket one).
func (m *Metrics) ObserveQueueDrop() { m.queueDrops.Inc() }
