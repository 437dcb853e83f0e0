// Package web embeds the browser side of duplex: the JavaScript client
// (static/duplex.js with TypeScript declarations in static/duplex.d.ts) and
// the chat page. The server serves them from the binary, so nothing is
// downloaded at run time and no build step is needed.
package web

import "embed"

// Static holds the files served at the site root (/duplex.js, /duplex.d.ts,
// the chat page and its assets).
//
//go:embed static
var Static embed.FS
