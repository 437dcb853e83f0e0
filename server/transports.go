package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/duplexhq/duplex/protocol"
)

// Client transports, as named in Config.Transports, the --transports
// flag and GET /api/info.
const (
	TransportWebSocket = "websocket" // GET /ws
	TransportSSE       = "sse"       // GET /sse, with POST /rpc for requests
	TransportLongPoll  = "longpoll"  // POST /poll, with POST /rpc for requests
)

// AllTransports is the default Config.Transports, in the order clients
// should prefer them.
var AllTransports = []string{TransportWebSocket, TransportSSE, TransportLongPoll}

// ParseTransports parses a comma-separated list of transport names, such
// as the --transports flag; an empty string means all.
func ParseTransports(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return slices.Clone(AllTransports), nil
	}
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		if !slices.Contains(AllTransports, t) {
			return nil, fmt.Errorf("server: unknown transport %q (want some of %s)", t, strings.Join(AllTransports, ","))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// enabledTransports validates the configured transports (nil: all).
func enabledTransports(ts []string) (map[string]bool, error) {
	if ts == nil {
		ts = AllTransports
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("server: no transport enabled")
	}
	m := make(map[string]bool, len(ts))
	for _, t := range ts {
		if !slices.Contains(AllTransports, t) {
			return nil, fmt.Errorf("server: unknown transport %q", t)
		}
		m[t] = true
	}
	return m, nil
}

// transports returns the enabled transports in preference order.
func (s *Server) transports() []string {
	var out []string
	for _, t := range AllTransports {
		if s.enabled[t] {
			out = append(out, t)
		}
	}
	return out
}

// transport serves h when transport t is enabled, and otherwise a JSON
// 404 naming what is, so a client (or a test forcing a fallback) sees why.
func (s *Server) transport(t string, h http.HandlerFunc) http.HandlerFunc {
	if s.enabled[t] {
		return h
	}
	return s.disabled("transport " + t)
}

// disabled answers the requests of a disabled endpoint.
func (s *Server) disabled(what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errf(protocol.CodeNotFound,
			what+" is disabled on this server (transports enabled: "+strings.Join(s.transports(), ",")+")"))
	}
}

// rpcEnabled reports whether POST /rpc is served: it carries the requests
// of both fallback transports.
func (s *Server) rpcEnabled() bool { return s.enabled[TransportSSE] || s.enabled[TransportLongPoll] }
