package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Error is a request the server refuses, with the Code for the error frame
// and the request id when it could be read.
type Error struct {
	Code    Code
	Message string
	ID      string // request id, "" if the frame had none
}

// Error describes the refusal for logs.
func (e *Error) Error() string { return "protocol: " + string(e.Code) + ": " + e.Message }

func errorf(code Code, id, format string, args ...any) *Error {
	return &Error{Code: code, ID: id, Message: fmt.Sprintf(format, args...)}
}

// Decode parses one client frame into r (which it resets first) and checks
// that it is a known request type with all required fields well-formed.
// maxFrame bounds the frame size (0 means DefaultMaxFrame). Any refusal is
// a *Error carrying the Code for the error frame; Decode never panics.
// Fields a request type does not use are ignored so that clients may send
// newer optional fields to older servers.
func Decode(frame []byte, maxFrame int, r *Request) error {
	if err := r.start(frame, maxFrame); err != nil {
		return err
	}
	if !decodeFast(frame, r) {
		r.reset() // the fast path may have filled some fields before giving up
		if err := decodeReflect(frame, r); err != nil {
			return err
		}
	}
	return r.check()
}

// start resets r and refuses a frame over maxFrame (0: DefaultMaxFrame).
func (r *Request) start(frame []byte, maxFrame int) error {
	r.reset()
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	if len(frame) > maxFrame {
		return errorf(CodeTooLarge, "", "frame of %d bytes exceeds %d", len(frame), maxFrame)
	}
	return nil
}

// check validates a decoded request: type and id, then the fields its
// type requires.
func (r *Request) check() error {
	if r.Type == "" {
		return errorf(CodeMissingField, r.ID, "missing field \"type\"")
	}
	if r.ID == "" {
		return errorf(CodeMissingField, "", "missing field \"id\"")
	}
	if len(r.ID) > MaxIDLen {
		return errorf(CodeBadRequest, "", "field \"id\" longer than %d bytes", MaxIDLen)
	}
	return r.validate()
}

// decodeReflect is the reference decoder: encoding/json, with its errors
// mapped to codes. decodeFast handles the common frames without it.
func decodeReflect(frame []byte, r *Request) error {
	// Leading whitespace is legal JSON; the first significant byte tells a
	// non-object frame apart so that it gets bad_request, not a field error.
	if t := bytes.TrimLeft(frame, " \t\r\n"); len(t) > 0 && t[0] != '{' && json.Valid(frame) {
		return errorf(CodeBadRequest, "", "frame must be a JSON object")
	}
	if err := json.Unmarshal(frame, r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return errorf(CodeBadRequest, "", "frame must be a JSON object")
			}
			id := r.ID
			if te.Field == "id" {
				id = ""
			}
			return errorf(CodeBadRequest, id, "field %q must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return errorf(CodeInvalidJSON, "", "invalid JSON: %v", err)
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64":
		return "an integer"
	case "slice":
		return "an array"
	case "ptr":
		return "an integer"
	case "struct":
		return "an object"
	}
	return "of another type"
}

// validate checks the fields required by r.Type.
func (r *Request) validate() error {
	switch r.Type {
	case TypeSend:
		if err := r.need("conv", r.Conv, MaxNameLen); err != nil {
			return err
		}
		if err := r.need("client_msg_id", r.ClientMsgID, MaxIDLen); err != nil {
			return err
		}
		if string(r.Meta) == "null" {
			r.Meta = nil
		}
		if r.Body == "" && len(r.Meta) == 0 {
			return errorf(CodeMissingField, r.ID, "missing field \"body\"")
		}
		if len(r.Meta) > 0 && !isObject(r.Meta) {
			return errorf(CodeBadRequest, r.ID, "field \"meta\" must be a JSON object")
		}
		return nil
	case TypeSync:
		if err := r.need("conv", r.Conv, MaxNameLen); err != nil {
			return err
		}
		if r.After < 0 || r.Limit < 0 {
			return errorf(CodeBadRequest, r.ID, "\"after\" and \"limit\" must not be negative")
		}
		return nil
	case TypeHistory:
		if err := r.need("conv", r.Conv, MaxNameLen); err != nil {
			return err
		}
		if r.Before < 0 || r.Limit < 0 {
			return errorf(CodeBadRequest, r.ID, "\"before\" and \"limit\" must not be negative")
		}
		return nil
	case TypeRead:
		if err := r.need("conv", r.Conv, MaxNameLen); err != nil {
			return err
		}
		if r.Seq <= 0 {
			return errorf(CodeMissingField, r.ID, "field \"seq\" must be a positive integer")
		}
		return nil
	case TypeTyping:
		return r.need("conv", r.Conv, MaxNameLen)
	case TypeSubscribe:
		if r.Since != nil && *r.Since < 0 {
			return errorf(CodeBadRequest, r.ID, "field \"since\" must not be negative")
		}
		return r.need("channel", r.Channel, MaxNameLen)
	case TypeUnsubscribe:
		return r.need("channel", r.Channel, MaxNameLen)
	case TypePublish:
		if err := r.need("channel", r.Channel, MaxNameLen); err != nil {
			return err
		}
		if len(r.Data) == 0 || string(r.Data) == "null" {
			return errorf(CodeMissingField, r.ID, "missing field \"data\"")
		}
		return nil
	case TypePresence:
		if len(r.Users) == 0 {
			return errorf(CodeMissingField, r.ID, "missing field \"users\"")
		}
		return r.list("users", r.Users)
	case TypeCreateDirect:
		return r.need("peer", r.Peer, MaxNameLen)
	case TypeCreateGroup:
		if len(r.Title) > MaxTitleLen {
			return errorf(CodeTooLarge, r.ID, "field \"title\" longer than %d bytes", MaxTitleLen)
		}
		return r.list("members", r.Members)
	case TypeAddMember, TypeRemoveMember:
		if err := r.need("conv", r.Conv, MaxNameLen); err != nil {
			return err
		}
		return r.need("user", r.User, MaxNameLen)
	case TypeConvs, TypePing:
		return nil
	}
	return errorf(CodeUnknownType, r.ID, "unknown request type %q", truncate(r.Type, 32))
}

func (r *Request) need(field, v string, max int) error {
	if v == "" {
		return errorf(CodeMissingField, r.ID, "missing field %q", field)
	}
	if len(v) > max {
		return errorf(CodeBadRequest, r.ID, "field %q longer than %d bytes", field, max)
	}
	return nil
}

func (r *Request) list(field string, vs []string) error {
	if len(vs) > MaxListLen {
		return errorf(CodeTooLarge, r.ID, "field %q has more than %d entries", field, MaxListLen)
	}
	for _, v := range vs {
		if v == "" || len(v) > MaxNameLen {
			return errorf(CodeBadRequest, r.ID, "field %q has an empty or over-long entry", field)
		}
	}
	return nil
}

// isObject reports whether raw (valid JSON, as produced by json.Unmarshal)
// is an object; null counts as absent and is refused by the caller.
func isObject(raw json.RawMessage) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
