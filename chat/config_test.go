package chat

import (
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxBody != 16<<10 || c.PresenceGrace != 5*time.Second || c.TypingInterval != 2*time.Second ||
		c.MaxConnsPerUser != 10 || c.Metrics == nil || c.Webhook.MaxAttempts != 5 {
		t.Fatalf("defaults %+v", c)
	}
	c, _ = Config{PresenceGrace: -1, MaxConnsPerUser: -1}.withDefaults()
	if c.PresenceGrace != 0 || c.MaxConnsPerUser != 0 {
		t.Fatalf("negative means none/unlimited: grace %v conns %d", c.PresenceGrace, c.MaxConnsPerUser)
	}
}

func TestConfigInvalid(t *testing.T) {
	for name, cfg := range map[string]Config{
		"colon in namespace": {Namespaces: map[string]Namespace{"a:b": {}}},
		"negative history":   {Namespaces: map[string]Namespace{"a": {History: -1}}},
		"history too long":   {Namespaces: map[string]Namespace{"a": {History: MaxChannelHistory + 1}}},
		"negative body":      {MaxBody: -1},
		"history limits":     {HistoryLimit: 100, HistoryMaxLimit: 10},
	} {
		if _, err := cfg.withDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestChannelNames(t *testing.T) {
	for name, want := range map[string]bool{
		"news:sports": true, "a": true, "user@x.y-z_1": true,
		"": false, "a b": false, "news:*": false, "a>b": false, string(make([]byte, 129)): false,
	} {
		if got := validChannel(name); got != want {
			t.Errorf("validChannel(%q) = %v", name, got)
		}
	}
	if ns := namespaceOf("news:sports:eu"); ns != "news" {
		t.Errorf("namespaceOf = %q", ns)
	}
	if ns := namespaceOf("plain"); ns != "" {
		t.Errorf("namespaceOf(plain) = %q", ns)
	}
}

// FuzzEnvelope: payloads from the broker never panic the parser, and what
// it accepts re-encodes to the same bytes.
func FuzzEnvelope(f *testing.F) {
	f.Add(appendEnvelope(nil, kindMessage, "s", "c", 7, []byte(`{}`)))
	f.Add([]byte{kindChannel, 0, 1, 'x', 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		e, ok := parseEnvelope(p)
		if !ok {
			return
		}
		again := appendEnvelope(nil, e.kind, string(e.origin), string(e.key), e.seq, e.frame)
		if e2, ok := parseEnvelope(again); !ok || e2.seq != e.seq || string(e2.key) != string(e.key) || string(e2.frame) != string(e.frame) {
			t.Fatalf("round trip of %q failed", p)
		}
	})
}
