package ws

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Handshake errors. Errors returned by Accept, AcceptConn and Dial for a
// handshake the peer got wrong wrap one of these, so callers can tell a
// misbehaving or hostile peer (log quietly) from a local failure such as a
// network error (which is returned wrapped as is).
var (
	// ErrBadHandshake means the peer's opening handshake broke RFC 6455
	// section 4: a malformed or incomplete request on the server side, or on
	// the client side a response that is not a valid 101 for our request
	// (wrong status, Sec-WebSocket-Accept, subprotocol or extension).
	ErrBadHandshake = errors.New("ws: bad handshake")

	// ErrOriginRefused means the server refused a request because its Origin
	// is neither the request's own host nor allowed by
	// AcceptOptions.OriginPatterns (cross-site WebSocket hijacking defence).
	ErrOriginRefused = errors.New("ws: origin refused")
)

// websocketGUID is appended to Sec-WebSocket-Key before hashing (RFC 6455
// section 1.3); the result proves the server understood the handshake.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Header names, written pre-canonicalised so map lookups need no
// canonicalisation at run time.
const (
	hdrUpgrade    = "Upgrade"
	hdrConnection = "Connection"
	hdrKey        = "Sec-Websocket-Key"
	hdrVersion    = "Sec-Websocket-Version"
	hdrAccept     = "Sec-Websocket-Accept"
	hdrProtocol   = "Sec-Websocket-Protocol"
	hdrExtensions = "Sec-Websocket-Extensions"
	hdrOrigin     = "Origin"
)

// handshakeError is a refused handshake: the HTTP status and short reason a
// server answers with (a client leaves status 0). It unwraps to kind
// (ErrBadHandshake or ErrOriginRefused) and to cause, if any.
type handshakeError struct {
	status int
	reason string
	kind   error
	cause  error
}

func (e *handshakeError) Error() string {
	if e.cause != nil {
		return e.kind.Error() + ": " + e.reason + ": " + e.cause.Error()
	}
	return e.kind.Error() + ": " + e.reason
}

func (e *handshakeError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

// badHandshake returns an ErrBadHandshake answered with status.
func badHandshake(status int, reason string) *handshakeError {
	return &handshakeError{status: status, reason: reason, kind: ErrBadHandshake}
}

// computeAccept returns the Sec-WebSocket-Accept value for key.
func computeAccept(key string) string {
	h := sha1.New()
	io.WriteString(h, key)
	io.WriteString(h, websocketGUID)
	var sum [sha1.Size]byte
	return base64.StdEncoding.EncodeToString(h.Sum(sum[:0]))
}

// validKey reports whether key is the base64 encoding of exactly 16 bytes.
// Only the canonical padded form is accepted: anything else is not what a
// conforming client generates.
func validKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	var buf [18]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(key))
	return err == nil && n == 16
}

// newKey returns a fresh random Sec-WebSocket-Key.
func newKey() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}

// tokenListHas reports whether any of the comma-separated lists in the
// values of header name contains token, compared ASCII case-insensitively
// (e.g. "Connection: keep-alive, Upgrade" has "upgrade").
func tokenListHas(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.Trim(t, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// tokenList returns the non-empty elements of the comma-separated lists in
// every value of header name, in order.
func tokenList(h http.Header, name string) []string {
	var out []string
	for _, v := range h[name] {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if t = strings.Trim(t, " \t"); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// validSubprotocol reports whether s is an RFC 7230 token, the syntax RFC
// 6455 gives subprotocol names.
func validSubprotocol(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// handshakeInterrupt is a deadline in the past, used to interrupt blocked I/O.
var handshakeInterrupt = time.Unix(1, 0)

// watchConn applies ctx to the blocking I/O of a handshake on nc: the
// earlier of ctx's deadline and timeout (if > 0) becomes nc's deadline, and
// cancelling ctx interrupts pending I/O. The returned stop must be called
// when the handshake I/O is over, with the I/O's error (or nil). It clears
// the deadline and returns the error to report: when ctx ended the I/O, one
// that wraps ctx's error, so callers see the cause rather than an i/o
// timeout.
func watchConn(ctx context.Context, nc net.Conn, timeout time.Duration) (stop func(ioErr error) error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	nc.SetDeadline(deadline)
	stopWatch := context.AfterFunc(ctx, func() { nc.SetDeadline(handshakeInterrupt) })
	return func(ioErr error) error {
		stopWatch()
		ctxErr := ctx.Err()
		if ctxErr == nil {
			// The conn deadline and ctx's timer expire together; the
			// timer may not have fired yet.
			if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
				ctxErr = context.DeadlineExceeded
			}
		}
		switch {
		case ctxErr != nil && ioErr == nil:
			return ctxErr
		case ctxErr != nil && isNetError(ioErr):
			return fmt.Errorf("%w: %v", ctxErr, ioErr)
		}
		nc.SetDeadline(time.Time{})
		return ioErr
	}
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// headReaders recycles the buffered readers that parse HTTP heads; a
// reader is kept by the Conn only when the peer sent bytes past the head.
var headReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func getHeadReader(r io.Reader) *bufio.Reader {
	br := headReaders.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

// putHeadReader recycles br unless it holds bytes, and returns the reader
// to hand to newConn: nil when recycled.
func putHeadReader(br *bufio.Reader) *bufio.Reader {
	if br.Buffered() > 0 {
		return br
	}
	br.Reset(nil)
	headReaders.Put(br)
	return nil
}

// headLimitReader reads from r until n bytes have been read, then fails with
// errHeadTooLarge. It bounds how much a peer can make us buffer while we
// parse an HTTP head; raise n (to unlimited) once the head is parsed.
type headLimitReader struct {
	r io.Reader
	n int64 // < 0 means unlimited
}

var errHeadTooLarge = errors.New("ws: HTTP head too large")

func (l *headLimitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
