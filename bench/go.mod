module github.com/duplexhq/duplex/bench

go 1.26.0

replace github.com/duplexhq/duplex => ../

require (
	github.com/duplexhq/duplex v0.0.0-00010101000000-000000000000
	github.com/gorilla/websocket v1.5.3
	github.com/lxzan/gws v1.8.9
)

require (
	github.com/dolthub/maphash v0.1.0 // indirect
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
)
