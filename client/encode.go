package client

// Send frames are encoded by appending into a buffer the connection's
// flusher reuses, byte for byte as encoding/json would encode the frame
// struct (TestAppendSendMatchesMarshal), without reflection or an
// allocation per send. Other requests are rare and use encoding/json.

import (
	"encoding/json"
	"fmt"

	"github.com/duplexhq/duplex/protocol"
)

// appendSend appends the send frame of o with request id id.
func (o *outgoing) appendSend(dst []byte, id string) []byte {
	dst = append(dst, `{"type":"`+protocol.TypeSend+`","id":`...)
	dst = protocol.AppendJSONString(dst, id)
	if o.conv != "" {
		dst = append(dst, `,"conv":`...)
		dst = protocol.AppendJSONString(dst, o.conv)
	}
	if o.clientMsgID != "" {
		dst = append(dst, `,"client_msg_id":`...)
		dst = protocol.AppendJSONString(dst, o.clientMsgID)
	}
	if o.body != "" {
		dst = append(dst, `,"body":`...)
		dst = protocol.AppendJSONString(dst, o.body)
	}
	if len(o.meta) > 0 {
		dst = append(dst, `,"meta":`...)
		dst = append(dst, o.meta...) // normalized by normalizeMeta
	}
	return append(dst, '}')
}

// normalizeMeta returns meta as encoding/json embeds a json.RawMessage
// (protocol.NormalizeRawJSON: meta itself in the usual case), or an error
// when it is not valid JSON.
func normalizeMeta(meta json.RawMessage) (json.RawMessage, error) {
	if len(meta) == 0 {
		return nil, nil
	}
	n, err := protocol.NormalizeRawJSON(meta)
	if err != nil {
		return nil, fmt.Errorf("client: meta is not valid JSON: %w", err)
	}
	return n, nil
}
