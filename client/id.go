package client

import (
	"crypto/rand"
	"encoding/hex"
)

func newRandomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
