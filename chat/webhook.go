package chat

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/duplexhq/duplex/store"
)

// SignatureHeader carries the webhook body's HMAC-SHA256 under
// Webhook.Secret, as "sha256=" and the hex digest.
const SignatureHeader = "X-Duplex-Signature"

// WebhookNotification is the JSON body POSTed to Webhook.URL when a
// message reaches members with no online device.
type WebhookNotification struct {
	Event   string   `json:"event"` // always "message.offline"
	Users   []string `json:"users"` // recipients with no online device
	Conv    string   `json:"conv"`
	Seq     int64    `json:"seq"`
	Sender  string   `json:"sender"`
	Body    string   `json:"body"`
	TS      int64    `json:"ts"` // Unix milliseconds
	Attempt int      `json:"attempt"`
}

// Sign returns the X-Duplex-Signature value of body under secret;
// receivers compare it with hmac.Equal.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// webhook sends offline notifications from a bounded queue; delivery never
// waits for it.
type webhook struct {
	cfg    Webhook
	m      Metrics
	log    *slog.Logger
	client *http.Client
	queue  chan WebhookNotification
}

func newWebhook(cfg Webhook, m Metrics, log *slog.Logger) *webhook {
	return &webhook{
		cfg: cfg, m: m, log: log,
		client: &http.Client{Timeout: cfg.Timeout},
		queue:  make(chan WebhookNotification, cfg.QueueSize),
	}
}

func (w *webhook) start(ctx context.Context, wg *sync.WaitGroup) {
	for range w.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case n := <-w.queue:
					w.deliver(ctx, n)
				}
			}
		}()
	}
}

// enqueue queues n without blocking; a full queue drops it (counted).
func (w *webhook) enqueue(n WebhookNotification) {
	select {
	case w.queue <- n:
	default:
		w.m.Drop("webhook_queue")
		w.log.Warn("chat: webhook queue full, notification dropped", "conv", n.Conv, "seq", n.Seq)
	}
}

// deliver POSTs n, retrying with exponential backoff on transport errors,
// 5xx and 429 responses.
func (w *webhook) deliver(ctx context.Context, n WebhookNotification) {
	backoff := w.cfg.Backoff
	for attempt := 1; attempt <= w.cfg.MaxAttempts; attempt++ {
		n.Attempt = attempt
		retry, err := w.post(ctx, n)
		if err == nil {
			return
		}
		if !retry || attempt == w.cfg.MaxAttempts {
			w.m.Drop("webhook_failed")
			w.log.Warn("chat: webhook gave up", "conv", n.Conv, "seq", n.Seq, "attempts", attempt, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (w *webhook) post(ctx context.Context, n WebhookNotification) (retry bool, err error) {
	body, err := json.Marshal(n)
	if err != nil {
		return false, fmt.Errorf("chat: webhook body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("chat: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(w.cfg.Secret, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("chat: webhook post: %w", err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("chat: webhook status %d", resp.StatusCode)
	}
	return false, fmt.Errorf("chat: webhook status %d", resp.StatusCode)
}

// notifyOffline queues a notification for the members, other than the
// sender, with no online device.
func (s *Service) notifyOffline(ctx context.Context, msg store.Message, members []store.Member) {
	users := make([]string, 0, len(members))
	for _, m := range members {
		if m.UserID != msg.Sender {
			users = append(users, m.UserID)
		}
	}
	if len(users) == 0 {
		return
	}
	sts, err := s.pr.Status(ctx, users)
	if err != nil {
		s.log.Warn("chat: presence for webhook", "conv", msg.ConversationID, "err", err)
		return
	}
	offline := users[:0]
	for _, st := range sts {
		if !st.Online {
			offline = append(offline, st.UserID)
		}
	}
	if len(offline) == 0 {
		return
	}
	s.wh.enqueue(WebhookNotification{
		Event: "message.offline", Users: offline, Conv: msg.ConversationID, Seq: msg.Seq,
		Sender: msg.Sender, Body: msg.Body, TS: unixMilli(msg.CreatedAt),
	})
}
