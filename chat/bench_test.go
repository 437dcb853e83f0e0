package chat

import (
	"context"
	"fmt"
	"testing"

	"github.com/duplexhq/duplex/protocol"
)

// countSink counts frames and keeps none.
type countSink struct{ n int }

func (s *countSink) Send([]byte) bool  { s.n++; return true }
func (s *countSink) Close(int, string) {}

// BenchmarkSessionDeliver measures a session's side of a live message:
// envelope parsing, per-conversation ordering bookkeeping and the hand-off
// to the sink. It allocates nothing per message.
func BenchmarkSessionDeliver(b *testing.B) {
	e := newEnv(b, Config{})
	sink := &countSink{}
	sess, err := e.svc.Connect(context.Background(), Identity{UserID: "bob"}, sink)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	ss := sess.(*session)
	frame, _ := protocol.Encode(protocol.MessageEvent{Type: protocol.TypeMessage, Message: protocol.Message{Conv: "c1", Seq: 1, Sender: "alice", Body: "hello"}})
	envs := make([][]byte, 1024)
	b.ReportAllocs()
	seq := int64(0)
	for b.Loop() {
		seq++
		i := int(seq) % len(envs)
		envs[i] = appendEnvelope(envs[i][:0], kindMessage, "other", "c1", seq, frame)
		ss.Deliver(envs[i])
	}
	if sink.n == 0 {
		b.Fatal("nothing delivered")
	}
}

// BenchmarkSend measures the whole persistence-first path for one message
// from a session: decode, append (sqlite, default durability), ack, and
// fan-out to a recipient device through broker/memory and the hub.
func BenchmarkSend(b *testing.B) {
	e := newEnv(b, Config{RatePerSecond: 1e9, RateBurst: 1 << 30})
	alice := e.connect("alice")
	conv := alice.direct("bob")
	bobSink := &countSink{}
	bob, err := e.svc.Connect(context.Background(), Identity{UserID: "bob"}, bobSink)
	if err != nil {
		b.Fatal(err)
	}
	defer bob.Close()
	aliceSink := &countSink{}
	sess, err := e.svc.Connect(context.Background(), Identity{UserID: "alice"}, aliceSink)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		sess.Handle(context.Background(), fmt.Appendf(nil, `{"type":"send","id":"%d","conv":%q,"client_msg_id":"m%d","body":"hello"}`, i, conv, i))
	}
}
