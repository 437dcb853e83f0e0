package chat

import (
	"fmt"
	"strings"
	"time"
)

// Config tunes the service. The zero value of every field means "use the
// default" documented on the field, so Config{} is a working configuration
// (with no channel namespaces and no webhook).
type Config struct {
	// MaxFrame bounds an inbound frame in bytes. Default 64 KiB.
	MaxFrame int
	// MaxBody bounds a message body in bytes. Default 16 KiB.
	MaxBody int
	// MaxMeta bounds a message's meta object in bytes. Default 4 KiB.
	MaxMeta int
	// MaxPublish bounds the data of a channel publication. Default 16 KiB.
	MaxPublish int

	// RatePerSecond and RateBurst size each session's token bucket: every
	// inbound frame costs one token. Defaults 20/s and 40.
	RatePerSecond float64
	RateBurst     int
	// RateStrikes is how many frames in a row a session may have refused
	// by the rate limit before it is closed with 4008. Default 50.
	RateStrikes int
	// MaxBadFrames is how many undecodable frames in a row close a session
	// with 1008. Default 20.
	MaxBadFrames int

	// MaxConnsPerUser bounds a user's simultaneous sessions on one node.
	// Default 10; negative means unlimited.
	MaxConnsPerUser int
	// MaxSubscriptions bounds the channels one session subscribes to.
	// Default 100.
	MaxSubscriptions int

	// HistoryLimit and HistoryMaxLimit are the default and maximum page
	// size of history. Defaults 50 and 200.
	HistoryLimit    int
	HistoryMaxLimit int
	// SyncPage is how many messages sync reads from the store at a time.
	// Default 200.
	SyncPage int

	// TypingTTL is how long a typing indicator lasts unless repeated.
	// Default 5s. TypingInterval is the minimum time between typing
	// requests per conversation per session. Default 2s.
	TypingTTL      time.Duration
	TypingInterval time.Duration

	// PresenceGrace delays going offline after a user's last connection
	// closes, so that a quick reconnect does not flap. Default 5s;
	// negative means no grace.
	PresenceGrace time.Duration

	// DeliveredFlush is how often delivered cursors are written to the
	// store in a batch. Default 1s.
	DeliveredFlush time.Duration

	// Namespaces configures channel namespaces: the part of a channel name
	// before the first ':' ("news" in "news:sports"); the key "" applies
	// to names without ':'. Channels of an unconfigured namespace do not
	// exist (not_found), even for admins.
	Namespaces map[string]Namespace

	// Webhook, when URL is set, notifies a backend about messages for
	// members with no online device.
	Webhook Webhook

	// Metrics receives measurements. Default NopMetrics.
	Metrics Metrics
}

// Namespace is the policy of a family of channels.
type Namespace struct {
	// Subscribe lets clients subscribe; Publish lets clients publish.
	// Admins (the HTTP API with the admin key) may always publish.
	Subscribe bool
	Publish   bool
	// History keeps the last History publications of each channel so that
	// subscribers can resume by offset. 0 keeps none; at most
	// MaxChannelHistory.
	History int
}

// MaxChannelHistory bounds Namespace.History.
const MaxChannelHistory = 10000

// Webhook configures offline notifications.
type Webhook struct {
	// URL receives a POST per message with at least one offline
	// recipient. Empty disables the webhook.
	URL string
	// Secret keys the HMAC-SHA256 signature sent in X-Duplex-Signature.
	Secret string
	// QueueSize bounds pending notifications; when full, new ones are
	// dropped and counted (Metrics.Drop("webhook_queue")). Default 1024.
	QueueSize int
	// Workers is the number of sending goroutines. Default 2.
	Workers int
	// MaxAttempts bounds tries per notification. Default 5.
	MaxAttempts int
	// Backoff is the wait before the first retry, doubled after each.
	// Default 500ms.
	Backoff time.Duration
	// Timeout bounds one POST. Default 5s.
	Timeout time.Duration
}

func (c Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxFrame, 64<<10)
	def(&c.MaxBody, 16<<10)
	def(&c.MaxMeta, 4<<10)
	def(&c.MaxPublish, 16<<10)
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 20
	}
	def(&c.RateBurst, 40)
	def(&c.RateStrikes, 50)
	def(&c.MaxBadFrames, 20)
	def(&c.MaxConnsPerUser, 10)
	def(&c.MaxSubscriptions, 100)
	def(&c.HistoryLimit, 50)
	def(&c.HistoryMaxLimit, 200)
	def(&c.SyncPage, 200)
	defDur(&c.TypingTTL, 5*time.Second)
	defDur(&c.TypingInterval, 2*time.Second)
	defDur(&c.PresenceGrace, 5*time.Second)
	if c.PresenceGrace < 0 {
		c.PresenceGrace = 0
	}
	defDur(&c.DeliveredFlush, time.Second)
	def(&c.Webhook.QueueSize, 1024)
	def(&c.Webhook.Workers, 2)
	def(&c.Webhook.MaxAttempts, 5)
	defDur(&c.Webhook.Backoff, 500*time.Millisecond)
	defDur(&c.Webhook.Timeout, 5*time.Second)
	if c.Metrics == nil {
		c.Metrics = NopMetrics{}
	}
	if c.MaxConnsPerUser < 0 {
		c.MaxConnsPerUser = 0 // hub: 0 = unlimited
	}
	if c.RatePerSecond < 0 || c.RateBurst < 1 || c.MaxFrame < 1 || c.MaxBody < 1 || c.MaxMeta < 1 ||
		c.HistoryLimit < 1 || c.HistoryMaxLimit < c.HistoryLimit || c.SyncPage < 1 || c.DeliveredFlush < 0 {
		return c, fmt.Errorf("chat: invalid config: negative or inconsistent limits")
	}
	for name, ns := range c.Namespaces {
		if strings.Contains(name, ":") {
			return c, fmt.Errorf("chat: invalid config: namespace %q contains ':'", name)
		}
		if ns.History < 0 || ns.History > MaxChannelHistory {
			return c, fmt.Errorf("chat: invalid config: namespace %q history %d not in [0, %d]", name, ns.History, MaxChannelHistory)
		}
	}
	return c, nil
}

// namespaceOf returns the namespace part of a channel name.
func namespaceOf(channel string) string {
	if i := strings.IndexByte(channel, ':'); i >= 0 {
		return channel[:i]
	}
	return ""
}

// validChannel reports whether name uses only the characters allowed in
// channel names: ASCII letters, digits and "-_.:@".
func validChannel(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '@':
		default:
			return false
		}
	}
	return true
}
