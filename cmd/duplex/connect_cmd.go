package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/duplexhq/duplex/client"
	"github.com/duplexhq/duplex/protocol"
)

const connectHelp = `commands:
  /direct PEER              open (creating if needed) the direct conversation with PEER
  /group TITLE a,b,...      create a group with those members and open it
  /open CONV                send plain lines to CONV
  /convs                    list your conversations
  /sync CONV [AFTER]        replay CONV's messages after seq AFTER (default 0)
  /history CONV [BEFORE]    print up to 50 messages before seq BEFORE (default: newest)
  /sub CHANNEL [SINCE]      subscribe to CHANNEL (resuming after offset SINCE)
  /unsub CHANNEL            unsubscribe
  /pub CHANNEL JSON         publish JSON to CHANNEL
  /raw                      raw mode: lines are duplex.v1 JSON frames, replies printed as received; /raw again leaves
  /help                     this text
  /quit                     leave
anything else is sent as a message to the open conversation`

// command carries out one input line and reports whether to quit.
func (t *terminal) command(ctx context.Context, line string) (quit bool) {
	if t.raw != nil {
		if strings.TrimSpace(line) == "/raw" || strings.TrimSpace(line) == "/quit" {
			t.raw.close()
			t.raw = nil
			t.printf("* raw mode off")
			return strings.TrimSpace(line) == "/quit"
		}
		if strings.TrimSpace(line) != "" {
			if err := t.raw.send(ctx, line); err != nil {
				t.printf("! raw: %v", err)
			}
		}
		return false
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return false
	}
	if !strings.HasPrefix(line, "/") {
		t.send(ctx, line)
		return false
	}
	name, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	args := strings.Fields(rest)
	if name == "/help" {
		t.printf("%s", connectHelp)
		return false
	}
	if name == "/quit" {
		return true
	}
	spec, ok := commands[name]
	if !ok {
		t.printf("! unknown command %s (/help lists them)", name)
		return false
	}
	if len(args) < spec.min || (spec.max >= 0 && len(args) > spec.max) {
		t.printf("! usage: %s", spec.usage)
		return false
	}
	if err := t.ready(ctx); err != nil {
		t.printf("! %s: %v", name, err)
		return false
	}
	if err := spec.run(t, ctx, args, rest); err != nil {
		t.printf("! %s: %s", name, describeErr(err))
	}
	return false
}

// commandSpec is one slash command: its argument count bounds (max -1:
// the rest of the line is free text) and what it does.
type commandSpec struct {
	usage    string
	min, max int
	run      func(t *terminal, ctx context.Context, args []string, rest string) error
}

var commands = map[string]commandSpec{
	"/direct": {"/direct PEER", 1, 1, func(t *terminal, ctx context.Context, a []string, _ string) error {
		conv, err := t.c.CreateDirect(ctx, a[0])
		if err != nil {
			return err
		}
		t.open = conv.ID
		t.printf("* opened %s", describeConv(conv))
		return nil
	}},
	"/group": {"/group TITLE a,b,...", 2, -1, func(t *terminal, ctx context.Context, a []string, rest string) error {
		// The title may contain spaces: the members are the last word.
		cut := strings.LastIndex(rest, " ")
		title, list := strings.TrimSpace(rest[:cut]), rest[cut+1:]
		conv, err := t.c.CreateGroup(ctx, title, splitList(list))
		if err != nil {
			return err
		}
		t.open = conv.ID
		t.printf("* opened %s", describeConv(conv))
		return nil
	}},
	"/open": {"/open CONV", 1, 1, func(t *terminal, _ context.Context, a []string, _ string) error {
		t.open = a[0]
		t.printf("* open %s", a[0])
		return nil
	}},
	"/convs": {"/convs", 0, 0, func(t *terminal, ctx context.Context, _ []string, _ string) error {
		convs, err := t.c.Conversations(ctx)
		if err != nil {
			return err
		}
		t.printf("* %d conversations", len(convs))
		for _, c := range convs {
			t.printf("  %s", describeConv(c))
		}
		return nil
	}},
	"/sync": {"/sync CONV [AFTER]", 1, 2, func(t *terminal, ctx context.Context, a []string, _ string) error {
		after, err := optInt(a, 1, "AFTER")
		if err != nil {
			return err
		}
		if err := t.c.Sync(ctx, a[0], after); err != nil {
			return err
		}
		// The messages came as events before the sync.end reply; the
		// client drops those this terminal has already printed.
		t.printf("* synced %s after #%d", a[0], after)
		return nil
	}},
	"/history": {"/history CONV [BEFORE]", 1, 2, func(t *terminal, ctx context.Context, a []string, _ string) error {
		before, err := optInt(a, 1, "BEFORE")
		if err != nil {
			return err
		}
		msgs, err := t.c.History(ctx, a[0], before, 50)
		if err != nil {
			return err
		}
		t.printf("* history of %s: %d messages", a[0], len(msgs))
		for _, m := range slices.Backward(msgs) { // newest first on the wire
			t.printf("%s", formatMessage(m))
		}
		return nil
	}},
	"/sub": {"/sub CHANNEL [SINCE]", 1, 2, func(t *terminal, ctx context.Context, a []string, _ string) error {
		since, err := optInt(a, 1, "SINCE")
		if err != nil {
			return err
		}
		if err := t.c.Subscribe(ctx, a[0], since); err != nil {
			return err
		}
		t.printf("* subscribed to %s", a[0])
		return nil
	}},
	"/unsub": {"/unsub CHANNEL", 1, 1, func(t *terminal, ctx context.Context, a []string, _ string) error {
		if err := t.c.Unsubscribe(ctx, a[0]); err != nil {
			return err
		}
		t.printf("* unsubscribed from %s", a[0])
		return nil
	}},
	"/pub": {"/pub CHANNEL JSON", 2, -1, func(t *terminal, ctx context.Context, a []string, rest string) error {
		data := strings.TrimSpace(strings.TrimPrefix(rest, a[0]))
		if !json.Valid([]byte(data)) {
			return fmt.Errorf("not valid JSON: %s", data)
		}
		off, err := t.c.Publish(ctx, a[0], json.RawMessage(data))
		if err != nil {
			return err
		}
		t.printf("* published to %s @%d", a[0], off)
		return nil
	}},
	"/raw": {"/raw", 0, 0, func(t *terminal, ctx context.Context, _ []string, _ string) error {
		rc, err := dialRaw(ctx, t.url, t.token, t.printf)
		if err != nil {
			return err
		}
		t.raw = rc
		t.printf("* raw mode on: type duplex.v1 JSON frames; /raw leaves")
		return nil
	}},
}

// send sends text to the open conversation and waits for the ack (the
// message is durable then).
func (t *terminal) send(ctx context.Context, text string) {
	if t.open == "" {
		t.printf("! no open conversation: /direct PEER, /group TITLE a,b or /open CONV first")
		return
	}
	if err := t.ready(ctx); err != nil {
		t.printf("! send: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, connectWait)
	defer cancel()
	ack, err := t.c.Send(ctx, t.open, "", text, nil)
	if err != nil {
		t.printf("! send: %s", describeErr(err))
		return
	}
	dup := ""
	if ack.Duplicate {
		dup = " (duplicate)"
	}
	t.printf("* sent %s #%d%s", ack.Conv, ack.Seq, dup)
}

// optInt parses the optional integer argument a[i] (0 when absent).
func optInt(a []string, i int, name string) (int64, error) {
	if len(a) <= i {
		return 0, nil
	}
	n, err := strconv.ParseInt(a[i], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s must be a non-negative integer, not %q", name, a[i])
	}
	return n, nil
}

// describeErr renders a server error as its code and message.
func describeErr(err error) string {
	var se *client.ServerError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s: %s", se.Code, se.Message)
	}
	return err.Error()
}

func describeConv(c protocol.Conversation) string {
	s := c.ID + " (" + c.Kind
	if c.Title != "" {
		s += " " + strconv.Quote(c.Title)
	}
	s += ": " + strings.Join(c.Members, ", ") + ")"
	if c.LastSeq > 0 {
		s += fmt.Sprintf(" last #%d, unread %d", c.LastSeq, c.Unread)
	}
	return s
}

func formatMessage(m protocol.Message) string {
	s := fmt.Sprintf("[%s #%d] %s: %s", m.Conv, m.Seq, m.Sender, m.Body)
	if len(m.Meta) > 0 {
		s += " " + string(m.Meta)
	}
	return s
}

// printEvent renders one client event as a line (or a few).
func (t *terminal) printEvent(ev client.Event) {
	switch {
	case ev.State != nil:
		st := ev.State
		switch st.State {
		case client.StateReconnecting:
			t.printf("* disconnected (code %d, %v); reconnecting in %v", st.Code, st.Err, st.Delay.Round(time.Millisecond))
		case client.StateClosed:
			if st.Code != 0 {
				t.printf("* closed (code %d)", st.Code)
			}
		default:
			t.printf("* %s", st.State)
		}
	case ev.Welcome != nil:
		w := ev.Welcome
		t.printf("* welcome %s: %d conversations", w.User, len(w.Conversations))
		for _, c := range w.Conversations {
			t.printf("  %s", describeConv(c))
		}
	case ev.Message != nil:
		t.printf("%s", formatMessage(*ev.Message))
	case ev.Ack != nil:
		// The command that sent the message prints its outcome.
	case ev.Receipt != nil:
		t.printf("* %s read %s up to #%d", ev.Receipt.User, ev.Receipt.Conv, ev.Receipt.Seq)
	case ev.Typing != nil:
		t.printf("* %s is typing in %s", ev.Typing.User, ev.Typing.Conv)
	case ev.Presence != nil:
		state := "offline"
		if ev.Presence.Online {
			state = "online"
		}
		t.printf("* %s is %s", ev.Presence.User, state)
	case ev.Channel != nil:
		t.printf("[%s @%d] %s", ev.Channel.Channel, ev.Channel.Offset, ev.Channel.Data)
	case ev.Member != nil:
		t.printf("* %s %s %s by %s", ev.Member.Conv, ev.Member.Action, ev.Member.User, ev.Member.By)
	case ev.Conversation != nil:
		t.printf("* new conversation %s", describeConv(*ev.Conversation))
	case ev.Err != nil:
		t.printf("! %s", describeErr(ev.Err))
	}
}
