package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

// errorBody is the JSON body of every API error:
// {"error":{"code":"not_found","message":"..."}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    protocol.Code `json:"code"`
	Message string        `json:"message"`
}

// statusFor maps a stable error code to its HTTP status, by the chat
// service's table so both agree.
func statusFor(c protocol.Code) int { return (&chat.Error{Code: c}).HTTPStatus() }

// apiError is an error the server itself raises with a code (bad query
// parameters, bodies that are not JSON, authentication).
type apiError struct {
	code protocol.Code
	msg  string
}

func (e *apiError) Error() string { return string(e.code) + ": " + e.msg }

func errf(code protocol.Code, msg string) error { return &apiError{code: code, msg: msg} }

// classify returns the stable code and the client-facing message for err.
// Internal errors get a generic message: their text may reveal internals.
func classify(err error) (protocol.Code, string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.code, ae.msg
	}
	if code, msg, ok := chatError(err); ok {
		return code, msg
	}
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrNotMember):
		return protocol.CodeNotFound, "not found"
	case errors.Is(err, store.ErrConflict):
		return protocol.CodeConflict, "conflict with the current state"
	case errors.Is(err, store.ErrInvalid):
		return protocol.CodeBadRequest, "invalid request"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return protocol.CodeUnavailable, "request cancelled or timed out"
	}
	return protocol.CodeInternal, "internal error"
}

// writeError answers with err as a JSON error body, logging server faults.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := classify(err)
	status := statusFor(code)
	if status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelError, "api error",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	} else {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "api refused",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("code", string(code)), slog.Any("err", err))
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// writeJSON writes v as the response body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
