package server

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
)

//go:embed page/index.html
var pageFS embed.FS

var pageTmpl = template.Must(template.ParseFS(pageFS, "page/index.html"))

// page serves the placeholder web page; in development mode it lets a
// person log in by name and chat.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, struct{ Dev bool }{s.cfg.DevMint != nil}); err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.Write(buf.Bytes())
}
