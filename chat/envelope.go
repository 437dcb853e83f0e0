package chat

import (
	"encoding/binary"

	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

// An envelope is what the service publishes on the broker: a small header
// the receiving session needs for bookkeeping, then the encoded frame that
// goes to the client unchanged. Layout:
//
//	kind byte | uvarint len, origin session id | uvarint len, key | uvarint seq | frame
//
// key is the conversation id (kindMessage) or channel name (kindChannel);
// seq is the message seq or channel offset. origin, when set, is the
// session that caused the event and must not receive it.
const (
	kindMessage byte = 'm' // conversation message: per-conversation ordering and cursors apply
	kindEvent   byte = 'e' // any other user event (receipt, typing, presence, member, conversation)
	kindChannel byte = 'c' // channel publication
	// kindAck is the ack of a send, routed behind the deliveries of the
	// conversation's earlier messages (see orderedAck): only the origin
	// session takes it.
	kindAck byte = 'a'
)

func appendEnvelope(dst []byte, kind byte, origin, key string, seq int64, frame []byte) []byte {
	if dst == nil {
		// One allocation of the exact size rather than several as it grows.
		dst = make([]byte, 0, 1+3*binary.MaxVarintLen64+len(origin)+len(key)+len(frame))
	}
	return append(appendHeader(dst, kind, origin, key, seq), frame...)
}

// appendHeader appends the envelope header that precedes the frame.
func appendHeader(dst []byte, kind byte, origin, key string, seq int64) []byte {
	dst = append(dst, kind)
	dst = binary.AppendUvarint(dst, uint64(len(origin)))
	dst = append(dst, origin...)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	return binary.AppendUvarint(dst, uint64(seq))
}

// messageEnvelope builds the envelope of msg's message event in one
// allocation, encoding the frame in place behind the header; nil if the
// frame cannot be encoded (a bug, logged as by encode).
func (s *Service) messageEnvelope(origin string, msg store.Message) []byte {
	ev := protocol.MessageEvent{Type: protocol.TypeMessage, Message: WireMessage(msg)}
	m := &ev.Message
	size := 1 + 3*binary.MaxVarintLen64 + len(origin) + len(m.Conv) + messageFrameSize(m)
	return s.appendMessageEvent(appendHeader(make([]byte, 0, size), kindMessage, origin, m.Conv, m.Seq), &ev)
}

// encodeMessage is encode of msg's message event (the same bytes) with
// the append encoder, in one allocation: syncs and polls send a page of
// them at a time.
func (s *Service) encodeMessage(msg store.Message) []byte {
	ev := protocol.MessageEvent{Type: protocol.TypeMessage, Message: WireMessage(msg)}
	return s.appendMessageEvent(make([]byte, 0, messageFrameSize(&ev.Message)), &ev)
}

// messageFrameSize bounds the usual size of m's frame: its field names
// (under 100 bytes), the values and the few escapes they may need.
func messageFrameSize(m *protocol.Message) int {
	return len(m.Conv) + 128 + 20*3 + len(m.Sender) + len(m.ClientMsgID) + len(m.Body) + len(m.Body)/8 + len(m.Meta)
}

// appendMessageEvent appends ev's frame to dst; nil if it cannot be
// encoded (a bug, logged as by encode).
func (s *Service) appendMessageEvent(dst []byte, ev *protocol.MessageEvent) []byte {
	dst, err := protocol.AppendMessageEvent(dst, ev)
	if err != nil {
		s.log.Error("chat: encoding frame", "err", err)
		return nil
	}
	return dst
}

// encodeAck builds an ack frame in a buffer of its own (the sink keeps it).
func encodeAck(a *protocol.Ack) []byte {
	size := 100 + len(a.ID) + len(a.Conv) + len(a.ClientMsgID) + 20*2
	return protocol.AppendAck(make([]byte, 0, size), a)
}

// envelope is a parsed envelope; its slices alias the payload.
type envelope struct {
	kind   byte
	origin []byte
	key    []byte
	seq    int64
	frame  []byte
}

// parseEnvelope splits p without allocating; ok is false for a malformed
// payload (another service version, or corruption on the broker) and for
// kindAck, which only the sending session (parseSessionEnvelope) takes.
func parseEnvelope(p []byte) (e envelope, ok bool) {
	e, ok = parseSessionEnvelope(p)
	return e, ok && e.kind != kindAck
}

// parseSessionEnvelope is parseEnvelope accepting kindAck too.
func parseSessionEnvelope(p []byte) (e envelope, ok bool) {
	if len(p) < 1 {
		return e, false
	}
	e.kind = p[0]
	i := 1
	field := func() ([]byte, bool) {
		n, w := binary.Uvarint(p[i:])
		if w <= 0 || n > uint64(len(p)-i-w) {
			return nil, false
		}
		b := p[i+w : i+w+int(n)]
		i += w + int(n)
		return b, true
	}
	if e.origin, ok = field(); !ok {
		return e, false
	}
	if e.key, ok = field(); !ok {
		return e, false
	}
	seq, w := binary.Uvarint(p[i:])
	if w <= 0 || seq > 1<<62 {
		return e, false
	}
	e.seq = int64(seq)
	e.frame = p[i+w:]
	return e, e.kind == kindMessage || e.kind == kindEvent || e.kind == kindChannel || e.kind == kindAck
}
