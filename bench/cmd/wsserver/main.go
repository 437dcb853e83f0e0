// Command wsserver runs a WebSocket echo server on one of several
// implementations, each used the way its documentation recommends, so that
// cmd/wsload can compare them.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lxzan/gws"

	"github.com/duplexhq/duplex/ws"
)

// pingInterval is the -ping flag.
var pingInterval time.Duration

func main() {
	impl := flag.String("impl", "duplex", "implementation: duplex (goroutine per connection), duplex-event (ws.Poller), gorilla, gws")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.DurationVar(&pingInterval, "ping", 0, "duplex and duplex-event: heartbeat PingInterval (0: none)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	var h http.Handler
	switch *impl {
	case "duplex":
		h = duplexEcho()
	case "duplex-event":
		p, err := ws.NewPoller(nil)
		if err != nil {
			log.Fatal(err)
		}
		defer p.Close()
		h = duplexEventEcho(p)
	case "gorilla":
		h = gorillaEcho()
	case "gws":
		h = gwsEcho()
	default:
		log.Fatalf("unknown -impl %q", *impl)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The load tool reads the address from the first line of stdout.
	fmt.Println(ln.Addr().String())

	srv := &http.Server{Handler: h}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Print(err)
	}
}

func duplexEcho() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, &ws.AcceptOptions{InsecureSkipVerifyOrigin: true, PingInterval: pingInterval})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	})
}

// echoHandler is the ws.Handler of duplex-event: it writes every message
// back from the Poller's worker.
type echoHandler struct{}

func (echoHandler) OnMessage(c *ws.Conn, typ ws.MessageType, p []byte) {
	_ = c.Write(context.Background(), typ, p) // a failed write closes c
}

func (echoHandler) OnClose(*ws.Conn, error) {}

func duplexEventEcho(p *ws.Poller) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, &ws.AcceptOptions{InsecureSkipVerifyOrigin: true, PingInterval: pingInterval})
		if err != nil {
			return
		}
		if err := p.Serve(c, echoHandler{}); err != nil {
			c.CloseNow()
		}
	})
}

func gorillaEcho() http.Handler {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, p); err != nil {
				return
			}
		}
	})
}

type gwsHandler struct{ gws.BuiltinEventHandler }

func (gwsHandler) OnPing(c *gws.Conn, p []byte) { _ = c.WritePong(p) }

func (gwsHandler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

func gwsEcho() http.Handler {
	up := gws.NewUpgrader(gwsHandler{}, &gws.ServerOption{
		CheckUtf8Enabled: true,
		Recovery:         gws.Recovery,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	})
}
