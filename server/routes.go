package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Server) routes() error {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /ws", s.transport(TransportWebSocket, s.handleWS))
	s.mux.Handle("GET /sse", s.instrument("sse", s.transport(TransportSSE, s.handleSSE)))
	s.mux.Handle("POST /poll", s.transport(TransportLongPoll, s.api("poll", s.poll).ServeHTTP))
	if s.rpcEnabled() {
		s.mux.Handle("POST /rpc", s.api("rpc", s.rpc))
	} else {
		s.mux.HandleFunc("POST /rpc", s.disabled("rpc (it serves the sse and longpoll transports)"))
	}
	s.mux.Handle("GET /api/info", s.instrument("info", http.HandlerFunc(s.info)))
	s.apiRoutes()
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}))
	return s.staticRoutes()
}

// healthz answers 200 while the process can serve HTTP at all.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the store answers and the server is not shutting
// down, so load balancers stop sending new clients during a drain.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Ready(ctx); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "not ready", slog.Any("err", err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
