package ws_test

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain runs the package's tests and then fails the run if goroutines
// leaked: every goroutine a Conn, a handshake or a test harness starts must
// have exited once its owner is done. Closers get up to leakGrace to finish.
func TestMain(m *testing.M) {
	stop := startTestPoller()
	code := m.Run()
	stop()
	if leaked := waitForLeaks(leakGrace); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "ws: %d goroutine(s) leaked after the tests:\n\n%s\n",
			len(leaked), strings.Join(leaked, "\n\n"))
		code = 1
	}
	os.Exit(code)
}

// leakGrace is how long goroutines get to exit after the last test; closers
// wake on deadlines and timers, so allow generously for a loaded machine.
const leakGrace = 2 * time.Second

// waitForLeaks polls the goroutine list until only expected goroutines are
// left or grace has passed, and returns the stacks of the unexpected ones.
func waitForLeaks(grace time.Duration) []string {
	deadline := time.Now().Add(grace)
	for {
		leaked := unexpectedGoroutines()
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// benignFuncs are functions whose presence in a goroutine's stack marks it as
// owned by the runtime or the testing package rather than by code under test.
var benignFuncs = []string{
	"testing.(*M).",        // the test main loop (and its alarm timer)
	"testing.runFuzzTests", // fuzzing coordinator and workers
	"testing.runFuzzing",
	"testing.(*F).Fuzz",
	"testing.tRunner.func1", // a parallel test parent waiting
	"os/signal.signal_recv",
	"os/signal.loop",
	"runtime.ensureSigM",
	"runtime.ReadTrace",
	"runtime/trace.Start",
	"internal/fuzz.",
}

// unexpectedGoroutines returns the stack of every goroutine except the
// calling one and the benign ones.
func unexpectedGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	// The first record is always the calling goroutine.
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 || len(bytes.TrimSpace(g)) == 0 {
			continue
		}
		s := string(g)
		if isBenign(s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

func isBenign(stack string) bool {
	for _, f := range benignFuncs {
		if strings.Contains(stack, f) {
			return true
		}
	}
	return false
}
