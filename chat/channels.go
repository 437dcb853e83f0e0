package chat

import (
	"context"
	"encoding/json"
	"time"

	"github.com/duplexhq/duplex/hub"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

// namespace returns the policy of channel, or not_found for a malformed
// name or an unconfigured namespace.
func (s *Service) namespace(channel string) (Namespace, error) {
	if !validChannel(channel) {
		return Namespace{}, newErr(protocol.CodeBadRequest, "channel names use letters, digits and -_.:@, at most 128 bytes")
	}
	ns, ok := s.cfg.Namespaces[namespaceOf(channel)]
	if !ok {
		return Namespace{}, newErr(protocol.CodeNotFound, "channel namespace not found")
	}
	return ns, nil
}

// Publish sends data to every subscriber of channel, keeping it in the
// channel's history when its namespace has one. Admins may publish to any
// configured namespace; clients only where the namespace allows.
func (s *Service) Publish(ctx context.Context, id Identity, channel string, data json.RawMessage) (store.ChannelMessage, error) {
	if !id.Admin {
		if err := requireUser(id); err != nil {
			return store.ChannelMessage{}, err
		}
	}
	ns, err := s.namespace(channel)
	if err != nil {
		return store.ChannelMessage{}, err
	}
	if !id.Admin && !ns.Publish {
		return store.ChannelMessage{}, newErr(protocol.CodeForbidden, "clients may not publish in this namespace")
	}
	if len(data) == 0 || string(data) == "null" {
		return store.ChannelMessage{}, newErr(protocol.CodeMissingField, "missing data")
	}
	if len(data) > s.cfg.MaxPublish {
		return store.ChannelMessage{}, newErr(protocol.CodeTooLarge, "data over %d bytes", s.cfg.MaxPublish)
	}
	if !json.Valid(data) {
		return store.ChannelMessage{}, newErr(protocol.CodeBadRequest, "data must be JSON")
	}
	if ns.History == 0 {
		cm := store.ChannelMessage{Channel: channel, Data: data, CreatedAt: time.Now()}
		s.publishChannel(cm)
		return cm, nil
	}
	actx, cancel := s.storeCtx()
	defer cancel()
	t := s.seq.begin("\x00channel:" + channel)
	start := time.Now()
	cm, err := s.st.ChannelAppend(actx, channel, data, ns.History)
	s.observe("ChannelAppend", start)
	if err != nil {
		s.seq.done(t, 0, nil)
		return store.ChannelMessage{}, storeErr("channel append", err)
	}
	s.seq.done(t, cm.Offset, func() { s.publishChannel(cm) })
	return cm, nil
}

func (s *Service) publishChannel(cm store.ChannelMessage) {
	w := WireChannelMessage(cm)
	w.Type = protocol.TypeChannelMessage
	frame := s.encode(w)
	if frame == nil {
		return
	}
	env := appendEnvelope(nil, kindChannel, "", cm.Channel, cm.Offset, frame)
	if err := s.br.Publish(s.ctx, hub.ChannelSubject(cm.Channel), env); err != nil {
		s.log.Warn("chat: publishing channel message", "channel", cm.Channel, "err", err)
	}
}
