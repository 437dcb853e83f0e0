package chat

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

// Error is a refusal or failure with a stable duplex.v1 error code. Every
// error returned by the API is an *Error or wraps one.
//
// Conversations a caller may not see (nonexistent, or not a member) are
// always not_found, never forbidden, so that errors do not reveal which
// conversation ids exist. forbidden is reserved for resources the caller
// can see but may not act on (a member who is not the owner adding
// members, a channel namespace closed to clients).
type Error struct {
	Code    protocol.Code
	Message string
	Err     error // cause, for logs; never sent to clients

	close int // close code overriding the one derived from Code
}

// Error describes the error for logs, cause included.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("chat: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("chat: %s: %s", e.Code, e.Message)
}

// Unwrap returns the cause, so errors.Is sees store and context errors.
func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus maps the code to the status the HTTP API should answer with.
func (e *Error) HTTPStatus() int {
	switch e.Code {
	case protocol.CodeBadRequest, protocol.CodeInvalidJSON, protocol.CodeMissingField, protocol.CodeUnknownType:
		return http.StatusBadRequest
	case protocol.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case protocol.CodeRateLimited, protocol.CodeTooManyConnections:
		return http.StatusTooManyRequests
	case protocol.CodeUnauthorized:
		return http.StatusUnauthorized
	case protocol.CodeForbidden:
		return http.StatusForbidden
	case protocol.CodeNotFound:
		return http.StatusNotFound
	case protocol.CodeConflict:
		return http.StatusConflict
	case protocol.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// CloseCode maps an error from Connect to the close code a transport should
// end the connection with.
func (e *Error) CloseCode() int {
	if e.close != 0 {
		return e.close
	}
	switch e.Code {
	case protocol.CodeUnauthorized:
		return protocol.CloseAuthFailed
	case protocol.CodeTooManyConnections:
		return protocol.CloseTooManyConns
	case protocol.CodeRateLimited:
		return protocol.CloseRateLimited
	case protocol.CodeUnavailable:
		return protocol.CloseGoingAway
	}
	return protocol.CloseInternal
}

// AsError returns err as an *Error, wrapping errors that are not one as
// internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: protocol.CodeInternal, Message: "internal error", Err: err}
}

func newErr(code protocol.Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// errNoConv is the one answer for a conversation the caller may not see.
func errNoConv(convID string, cause error) *Error {
	return &Error{Code: protocol.CodeNotFound, Message: "conversation not found", Err: fmt.Errorf("conversation %s: %w", convID, cause)}
}

// storeErr maps a store error to an *Error; op names the failed operation
// for logs.
func storeErr(op string, err error) *Error {
	wrapped := fmt.Errorf("%s: %w", op, err)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrNotMember):
		return &Error{Code: protocol.CodeNotFound, Message: "not found", Err: wrapped}
	case errors.Is(err, store.ErrConflict):
		return &Error{Code: protocol.CodeConflict, Message: "conflicts with the current state", Err: wrapped}
	case errors.Is(err, store.ErrInvalid):
		return &Error{Code: protocol.CodeBadRequest, Message: "invalid argument", Err: wrapped}
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: protocol.CodeUnavailable, Message: "temporarily unavailable", Err: wrapped}
	}
	return &Error{Code: protocol.CodeInternal, Message: "internal error", Err: wrapped}
}
