package web_test

import (
	"fmt"
	"io/fs"
	"net/http"

	"github.com/duplexhq/duplex/web"
)

// Serving the browser side from another HTTP server (package server does
// this, with caching headers and a content security policy).
func ExampleStatic() {
	root, err := fs.Sub(web.Static, "static")
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(root))

	names, _ := fs.Glob(root, "*")
	for _, n := range names {
		fmt.Println(n)
	}
	// Output:
	// chat.css
	// chat.js
	// duplex.d.ts
	// duplex.js
	// index.html
}
