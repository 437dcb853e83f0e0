package server_test

import (
	"context"
	"log"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/duplexhq/duplex/auth"
	brokermem "github.com/duplexhq/duplex/broker/memory"
	"github.com/duplexhq/duplex/chat"
	presencemem "github.com/duplexhq/duplex/presence/memory"
	"github.com/duplexhq/duplex/server"
	"github.com/duplexhq/duplex/store/sqlite"
)

// Example wires a single-node server: SQLite store, in-memory broker and
// presence, the chat service, and the HTTP front end with its metrics fed
// by the chat service. Serve returns after SIGINT, once every WebSocket was
// closed with 1001; the chat service and the store are closed after it.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	st, err := sqlite.Open(ctx, sqlite.Options{Path: "duplex.db", Durability: sqlite.DurabilityFull})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	br, pr := brokermem.New(brokermem.Options{}), presencemem.New(presencemem.Options{})
	defer br.Close()
	defer pr.Close()

	metrics := server.NewMetrics()
	svc, err := chat.New(chat.Config{Metrics: metrics}, st, br, pr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()

	authn, err := auth.New(auth.Config{Secret: []byte(os.Getenv("DUPLEX_JWT_SECRET"))})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(server.Config{Chat: svc, Auth: authn, Ready: st.Ping, Metrics: metrics})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Serve(ctx, ln, nil, 10*time.Second); err != nil {
		log.Print(err)
	}
}
