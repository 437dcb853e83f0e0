// Command wsload measures a WebSocket echo server started by cmd/wsserver.
//
//	wsload -mode idle -conns 15000 -pid PID ws://127.0.0.1:PORT/
//	wsload -mode echo -conns 1000 -size 1024 -duration 10s ws://127.0.0.1:PORT/
//	wsload -mode idle -conns 10000 -pid PID -jwt-secret S ws://127.0.0.1:PORT/ws
//
// Idle mode opens the connections, lets the server settle and reports the
// growth of the server's resident memory per connection. Echo mode runs one
// closed loop per connection (send, wait for the echo, repeat) and reports
// messages per second and round-trip latency percentiles. The client side is
// duplex's ws client for every server, so the servers are compared under the
// same load. By default the echo clients are read by one ws.Poller, so that
// the load side spends as little CPU as possible on the two cores it shares
// with the server (-client goroutine runs a goroutine per connection).
//
// With -jwt-secret the server is `duplex serve` (bench/run-serve-idle.sh):
// connection i logs in as its own user (an access_token minted with the
// secret for PREFIX+i), offers duplex.v1, and its idle-mode round trip is a
// duplex.v1 ping after the welcome.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/loadgen"
	"github.com/duplexhq/duplex/protocol"
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
	// ServerCPUus is the server's CPU time (user+system, from /proc) per
	// echoed message: less sensitive than msgs_per_sec to other load on a
	// shared machine. LoadCPUus is the same for this process.
	ServerCPUus float64 `json:"server_cpu_us_per_msg,omitempty"`
	LoadCPUus   float64 `json:"load_cpu_us_per_msg,omitempty"`
	Errors      int64   `json:"errors"`
}

func main() {
	mode := flag.String("mode", "echo", "idle or echo")
	conns := flag.Int("conns", 1000, "connections")
	pid := flag.Int("pid", 0, "server process id (idle mode reads its RSS)")
	settle := flag.Duration("settle", 5*time.Second, "idle mode: wait before reading RSS")
	size := flag.Int("size", 1024, "echo mode: message size in bytes")
	dur := flag.Duration("duration", 10*time.Second, "echo mode: how long to run")
	dialers := flag.Int("dialers", 64, "concurrent dials while connecting")
	client := flag.String("client", "event", "echo mode: how the load side reads, event (one ws.Poller for all connections) or goroutine (one per connection)")
	secret := flag.String("jwt-secret", "", "idle mode against duplex serve: mint each connection a token for its own user with this HS256 secret")
	prefix := flag.String("user-prefix", "idle-", "with -jwt-secret: user ids are this plus the connection's number")
	gcURL := flag.String("gc-url", "", "idle mode: GET this URL (a Go server's /debug/pprof/heap?gc=1) after the round trips, so that the settle ends with the handshakes' garbage collected")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: wsload [flags] ws://host:port/")
	}
	url := flag.Arg(0)
	if *secret != "" {
		chatSecret, chatPrefix = []byte(*secret), *prefix
	}

	var r result
	var err error
	switch *mode {
	case "idle":
		r, err = idle(url, *conns, *dialers, *pid, *settle, *gcURL)
	case "echo":
		r, err = measureCPU(*pid, func() (result, error) {
			if *client == "goroutine" {
				return echo(url, *conns, *dialers, *size, *dur)
			}
			return echoEvent(url, *conns, *dialers, *size, *dur)
		})
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		log.Fatal(err)
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

// chatSecret, when set (-jwt-secret), makes every dial log in to duplex
// serve as user chatPrefix+i.
var (
	chatSecret []byte
	chatPrefix string
)

// dialOne opens connection i.
func dialOne(ctx context.Context, url string, i int) (*ws.Conn, error) {
	if chatSecret == nil {
		c, _, err := ws.Dial(ctx, url, nil)
		return c, err
	}
	tok, err := auth.Mint(chatSecret, chatPrefix+strconv.Itoa(i), 24*time.Hour, time.Now())
	if err != nil {
		return nil, err
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	c, _, err := ws.Dial(ctx, url+sep+"access_token="+tok, &ws.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	return c, err
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
				// A few retries: on a shared machine a dial may be refused
				// while ports held in TIME_WAIT by earlier runs are reused.
				var c *ws.Conn
				var err error
				for attempt := range 3 {
					if attempt > 0 {
						time.Sleep(100 * time.Millisecond)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					c, err = dialOne(ctx, url, i)
					cancel()
					if err == nil {
						break
					}
				}
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

func idle(url string, n, par, pid int, settle time.Duration, gcURL string) (result, error) {
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
	// implementation does while idle). duplex serve first sends a welcome.
	msg, reads := []byte("hello"), 1
	if chatSecret != nil {
		msg, reads = []byte(`{"type":"ping","id":"idle"}`), 2
	}
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
				for range reads {
					if _, _, err := c.Read(ctx); err != nil {
						errs.Add(1)
						break
					}
				}
			}
		}()
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()
	if gcURL != "" {
		// Without allocation, a Go server collects the garbage of the
		// handshakes only at its periodic GC (every 2 minutes); this
		// measures the state it then settles in.
		resp, err := http.Get(gcURL)
		if err != nil {
			return result{}, fmt.Errorf("gc: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
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
	hists := make([]loadgen.Histogram, n)
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
				h.Record(time.Since(start))
				count++
			}
			total.Add(count)
		}()
	}
	wg.Wait()
	var all loadgen.Histogram
	for i := range hists {
		all.Merge(&hists[i])
	}
	runtime.KeepAlive(conns)
	return result{
		Mode: "echo", Conns: n, Messages: total.Load(),
		MsgsPerSec: float64(total.Load()) / dur.Seconds(),
		P50us:      all.Quantile(0.50).Microseconds(),
		P99us:      all.Quantile(0.99).Microseconds(),
		P999us:     all.Quantile(0.999).Microseconds(),
		Errors:     errs.Load(),
	}, nil
}

// echoConn is one closed loop of echoEvent, driven by the Poller: every
// echo received is timed and answered with the next message.
type echoConn struct {
	hist     loadgen.Histogram
	msg      []byte
	deadline time.Time
	start    time.Time
	count    int64
	failed   bool
	done     func()
	finished bool
}

func (e *echoConn) send(c *ws.Conn) {
	e.start = time.Now()
	if err := c.Write(context.Background(), ws.MessageBinary, e.msg); err != nil {
		e.fail()
	}
}

func (e *echoConn) fail() {
	if !e.finished {
		e.finished, e.failed = true, true
		e.done()
	}
}

func (e *echoConn) OnMessage(c *ws.Conn, _ ws.MessageType, p []byte) {
	if e.finished {
		return
	}
	now := time.Now()
	if len(p) != len(e.msg) {
		e.fail()
		return
	}
	e.hist.Record(now.Sub(e.start))
	e.count++
	if now.After(e.deadline) {
		e.finished = true
		e.done()
		return
	}
	e.send(c)
}

func (e *echoConn) OnClose(*ws.Conn, error) {
	// Connections are closed after the run; one closing early failed.
	e.fail()
}

func echoEvent(url string, n, par, size int, dur time.Duration) (result, error) {
	conns, err := dialAll(url, n, par)
	if err != nil {
		return result{}, err
	}
	poller, err := ws.NewPoller(nil)
	if err != nil {
		closeAll(conns)
		return result{}, err
	}
	msg := bytes.Repeat([]byte("x"), size)
	loops := make([]echoConn, n)
	var wg sync.WaitGroup
	wg.Add(n)
	deadline := time.Now().Add(dur)
	for i, c := range conns {
		e := &loops[i]
		e.msg, e.deadline = msg, deadline
		var once sync.Once
		e.done = func() { once.Do(wg.Done) }
		if err := poller.Serve(c, e); err != nil {
			closeAll(conns)
			poller.Close()
			return result{}, err
		}
	}
	// Handlers run on the Poller's workers; the first message of each
	// loop is sent from here, under the same ordering the handler sees
	// (OnMessage cannot run before its send returns: nothing is echoed
	// before it is sent).
	for i, c := range conns {
		loops[i].send(c)
	}
	wg.Wait()
	poller.Close()
	closeAll(conns)
	var all loadgen.Histogram
	var total, errs int64
	for i := range loops {
		all.Merge(&loops[i].hist)
		total += loops[i].count
		if loops[i].failed {
			errs++
		}
	}
	return result{
		Mode: "echo", Conns: n, Messages: total,
		MsgsPerSec: float64(total) / dur.Seconds(),
		P50us:      all.Quantile(0.50).Microseconds(),
		P99us:      all.Quantile(0.99).Microseconds(),
		P999us:     all.Quantile(0.999).Microseconds(),
		Errors:     errs,
	}, nil
}

// cpuTime returns the user+system CPU time of a process from /proc.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may contain spaces) start
	// after the last ')': utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks, nil
}

// measureCPU runs an echo measurement and adds the CPU time per message of
// the server (pid, if non-zero) and of this process. Connection setup is
// included in both; it is small next to a run of several seconds.
func measureCPU(pid int, run func() (result, error)) (result, error) {
	var s0, l0 time.Duration
	var err error
	if pid != 0 {
		if s0, err = cpuTime(pid); err != nil {
			return result{}, err
		}
	}
	if l0, err = cpuTime(os.Getpid()); err != nil {
		return result{}, err
	}
	r, err := run()
	if err != nil || r.Messages == 0 {
		return r, err
	}
	if pid != 0 {
		s1, err := cpuTime(pid)
		if err != nil {
			return r, err
		}
		r.ServerCPUus = float64((s1 - s0).Microseconds()) / float64(r.Messages)
	}
	if l1, err := cpuTime(os.Getpid()); err == nil {
		r.LoadCPUus = float64((l1 - l0).Microseconds()) / float64(r.Messages)
	}
	return r, nil
}
