package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/duplexhq/duplex/web"
)

// staticFile is one embedded file of the web client, ready to serve.
type staticFile struct {
	name  string
	ctype string
	etag  string
	body  []byte
}

// pageCSP lets the page load its own scripts and styles and talk to this
// origin over HTTP and WebSocket, and nothing else: no inline script, no
// framing.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// staticTypes are the content types of the web client's files.
var staticTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".ts":   "text/plain; charset=utf-8", // duplex.d.ts: for people, not for browsers to run
}

// loadStatic reads the embedded web client (package web). A file of a
// type it does not know is a build mistake, reported at start-up.
func loadStatic() ([]staticFile, error) {
	root, err := fs.Sub(web.Static, "static")
	if err != nil {
		return nil, fmt.Errorf("server: web client: %w", err)
	}
	entries, err := fs.ReadDir(root, ".")
	if err != nil {
		return nil, fmt.Errorf("server: web client: %w", err)
	}
	var out []staticFile
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		ctype, ok := staticTypes[path.Ext(e.Name())]
		if !ok {
			return nil, fmt.Errorf("server: web client: no content type for %s", e.Name())
		}
		body, err := fs.ReadFile(root, e.Name())
		if err != nil {
			return nil, fmt.Errorf("server: web client: %w", err)
		}
		sum := sha256.Sum256(body)
		out = append(out, staticFile{name: e.Name(), ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, body: body})
	}
	return out, nil
}

// staticRoutes serves the web client: index.html at "/", the other files
// at their names. no-cache makes browsers revalidate (cheaply, by ETag),
// so an upgraded server is never paired with a stale client.
func (s *Server) staticRoutes() error {
	files, err := loadStatic()
	if err != nil {
		return err
	}
	for _, f := range files {
		pattern := "GET /" + f.name
		if f.name == "index.html" {
			pattern = "GET /{$}"
		}
		s.mux.Handle(pattern, s.instrument("static", serveStatic(f)))
	}
	return nil
}

func serveStatic(f staticFile) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(f.ctype, "text/html") {
			h.Set("Content-Security-Policy", pageCSP)
		}
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
	})
}

// info answers GET /api/info: what the page needs to know before logging
// in (whether to offer log-in by name, which transports to try).
func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Dev        bool     `json:"dev"`
		Transports []string `json:"transports"`
		Version    string   `json:"version"`
	}{s.cfg.DevMint != nil, s.transports(), s.version()})
}

func (s *Server) version() string {
	if s.cfg.Version != "" {
		return s.cfg.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
