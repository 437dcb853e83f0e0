// Command wsload measures a WebSocket echo server started by cmd/wsserver.
//
//	wsload -mode idle -conns 15000 -pid PID ws://127.0.0.1:PORT/
//	wsload -mode echo -conns 1000 -size 1024 -duration 10s ws://127.0.0.1:PORT/
//
// Idle mode opens the connections, lets the server settle and reports the
// growth of the server's resident memory per connection. Echo mode runs one
// closed loop per connection (send, wait for the echo, repeat) and reports
// messages per second and round-trip latency percentiles. The client side is
// duplex's ws client for every server, so the servers are compared under the
// same load.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexhq/duplex/ws"
)

type result struct {
	Mode         string  `json:"mode"`
	Conns        int     `json:"conns"`
	RSSBeforeKiB int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB  int64   `json:"rss_after_kib,omitempty"`
	KiBPerConn   float64 `json:"kib_per_conn,omitempty"`
	Messages     int64   `json:"messages,omitempty"`
	MsgsPerSec   float64 `json:"msgs_per_sec,omitempty"`
	P50us        int64   `json:"p50_us,omitempty"`
	P99us        int64   `json:"p99_us,omitempty"`
	P999us       int64   `json:"p999_us,omitempty"`
	Errors       int64   `json:"errors"`
}

func main() {
	mode := flag.String("mode", "echo", "idle or echo")
	conns := flag.Int("conns", 1000, "connections")
	pid := flag.Int("pid", 0, "server process id (idle mode reads its RSS)")
	settle := flag.Duration("settle", 5*time.Second, "idle mode: wait before reading RSS")
	size := flag.Int("size", 1024, "echo mode: message size in bytes")
	dur := flag.Duration("duration", 10*time.Second, "echo mode: how long to run")
	dialers := flag.Int("dialers", 64, "concurrent dials while connecting")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: wsload [flags] ws://host:port/")
	}
	url := flag.Arg(0)

	var r result
	var err error
	switch *mode {
	case "idle":
		r, err = idle(url, *conns, *dialers, *pid, *settle)
	case "echo":
		r, err = echo(url, *conns, *dialers, *size, *dur)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		log.Fatal(err)
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

// dialAll opens n connections with at most par dials in flight.
func dialAll(url string, n, par int) ([]*ws.Conn, error) {
	conns := make([]*ws.Conn, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c, _, err := ws.Dial(ctx, url, nil)
				cancel()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("dial %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		closeAll(conns)
		return nil, firstErr
	}
	return conns, nil
}

func closeAll(conns []*ws.Conn) {
	for _, c := range conns {
		if c != nil {
			c.CloseNow()
		}
	}
}

func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(v))
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func idle(url string, n, par, pid int, settle time.Duration) (result, error) {
	if pid == 0 {
		return result{}, fmt.Errorf("idle mode needs -pid")
	}
	before, err := rssKiB(pid)
	if err != nil {
		return result{}, err
	}
	conns, err := dialAll(url, n, par)
	if err != nil {
		return result{}, err
	}
	defer closeAll(conns)
	// One round trip on every connection, so each server has run its
	// read path once (buffers touched, then released or not, as the
	// implementation does while idle).
	msg := []byte("hello")
	ctx := context.Background()
	var errs atomic.Int64
	var wg sync.WaitGroup
	work := make(chan *ws.Conn)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if c.Write(ctx, ws.MessageText, msg) != nil {
					errs.Add(1)
					continue
				}
				if _, _, err := c.Read(ctx); err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()
	time.Sleep(settle)
	after, err := rssKiB(pid)
	if err != nil {
		return result{}, err
	}
	return result{
		Mode: "idle", Conns: n, RSSBeforeKiB: before, RSSAfterKiB: after,
		KiBPerConn: float64(after-before) / float64(n), Errors: errs.Load(),
	}, nil
}

func echo(url string, n, par, size int, dur time.Duration) (result, error) {
	conns, err := dialAll(url, n, par)
	if err != nil {
		return result{}, err
	}
	defer closeAll(conns)
	msg := bytes.Repeat([]byte("x"), size)
	var total, errs atomic.Int64
	hists := make([]histogram, n)
	deadline := time.Now().Add(dur)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &hists[i]
			var count int64
			for time.Now().Before(deadline) {
				start := time.Now()
				if err := c.Write(ctx, ws.MessageBinary, msg); err != nil {
					errs.Add(1)
					return
				}
				_, p, err := c.Read(ctx)
				if err != nil || len(p) != size {
					errs.Add(1)
					return
				}
				h.record(time.Since(start))
				count++
			}
			total.Add(count)
		}()
	}
	wg.Wait()
	var all histogram
	for i := range hists {
		all.merge(&hists[i])
	}
	runtime.KeepAlive(conns)
	return result{
		Mode: "echo", Conns: n, Messages: total.Load(),
		MsgsPerSec: float64(total.Load()) / dur.Seconds(),
		P50us:      all.quantile(0.50).Microseconds(),
		P99us:      all.quantile(0.99).Microseconds(),
		P999us:     all.quantile(0.999).Microseconds(),
		Errors:     errs.Load(),
	}, nil
}
