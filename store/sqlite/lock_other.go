//go:build !unix

package sqlite

import "os"

// lockFile is a no-op where flock is unavailable: running two Stores on
// one file there is not detected.
func lockFile(path string) (*os.File, error) { return nil, nil }
