package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/duplexhq/duplex/store"
	"github.com/duplexhq/duplex/store/sqlite"
	"github.com/duplexhq/duplex/store/storetest"
)

func openTemp(t testing.TB, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "duplex.db")
	}
	s, err := sqlite.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t, sqlite.Options{}) })
}

// TestContractFull runs the suite at DurabilityFull with tiny batches and a
// tiny queue, so batch boundaries and a full queue are exercised too.
func TestContractFull(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t, sqlite.Options{Durability: sqlite.DurabilityFull, MaxBatch: 3, QueueLen: 2})
	})
}
