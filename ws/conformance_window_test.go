package ws_test

// compress/flate always accepts a 32 KiB window, so decoding alone cannot
// catch a compressor that uses a larger window than agreed (RFC 7692
// section 7.1.2: server_max_window_bits and client_max_window_bits); the
// suite checks distances with ws.CheckInflate, the package's test inflater
// (deflate_check_test.go), which reports the longest back-reference and
// fails on one beyond the window.

import (
	"bytes"
	"compress/flate"
	"math/rand/v2"
	"testing"

	"github.com/duplexhq/duplex/ws"
)

// TestConformanceWindowParser checks the distance checker itself against
// compress/flate: it parses every level's output, and finds the distance a
// repeated block forces.
func TestConformanceWindowParser(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, level := range []int{flate.NoCompression, flate.BestSpeed, 5, flate.BestCompression, flate.HuffmanOnly} {
		for _, gap := range []int{100, 1000, 20000} {
			block := make([]byte, gap)
			for i := range block {
				block[i] = byte(rnd.IntN(256))
			}
			data := append(bytes.Clone(block), block...)
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, level)
			fw.Write(data)
			fw.Flush()
			_, d, err := ws.CheckInflate(nil, bytes.TrimSuffix(buf.Bytes(), deflateTail), 1<<15)
			if err != nil {
				t.Fatalf("level %d gap %d: %v", level, gap, err)
			}
			matches := level != flate.NoCompression && level != flate.HuffmanOnly
			if matches && d != gap {
				t.Errorf("level %d: max distance %d, want %d", level, d, gap)
			}
			if !matches && d != 0 {
				t.Errorf("level %d: max distance %d, want none", level, d)
			}
			if _, _, err := ws.CheckInflate(nil, bytes.TrimSuffix(buf.Bytes(), deflateTail), gap-1); matches && err == nil {
				t.Errorf("level %d: distance %d accepted in a %d byte window", level, gap, gap-1)
			}
		}
	}
	if _, _, err := ws.CheckInflate(nil, []byte{0x07, 0x00}, 1<<15); err == nil {
		t.Errorf("block type 3 parsed without error")
	}
}
