package protocol_test

import (
	"errors"
	"fmt"

	"github.com/duplexhq/duplex/protocol"
)

func ExampleDecode() {
	var req protocol.Request
	err := protocol.Decode([]byte(`{"type":"send","id":"7","conv":"c1","client_msg_id":"m1","body":"hi"}`), 0, &req)
	fmt.Println(req.Type, req.ID, req.Conv, req.Body, err)

	err = protocol.Decode([]byte(`{"type":"send","id":"8","conv":"c1"}`), 0, &req)
	var pe *protocol.Error
	if errors.As(err, &pe) {
		// The error frame carries the request id so the client can match it.
		fmt.Printf("%s\n", protocol.EncodeError(pe.ID, pe.Code, pe.Message))
	}
	// Output:
	// send 7 c1 hi <nil>
	// {"type":"error","id":"8","code":"missing_field","message":"missing field \"client_msg_id\""}
}

func ExampleEncode() {
	frame, _ := protocol.Encode(protocol.Ack{Type: protocol.TypeAck, ID: "7", Conv: "c1", Seq: 42, ClientMsgID: "m1", TS: 1763710000123})
	fmt.Printf("%s\n", frame)
	// Output:
	// {"type":"ack","id":"7","conv":"c1","seq":42,"client_msg_id":"m1","ts":1763710000123}
}
