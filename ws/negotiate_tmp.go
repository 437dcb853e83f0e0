package ws

// TEMPORARY (handshake owner): stand-ins for the compression owner's
// negotiation functions so the handshake compiles until compress.go provides
// them. Delete when the real ones land.

import (
	"errors"
	"net/http"
)

func (o *CompressionOptions) serverNegotiate(h http.Header) (p *deflateParams, response string, err error) {
	return nil, "", nil
}

func (o *CompressionOptions) clientOffer() string { return "" }

func (o *CompressionOptions) clientAccept(response string) (*deflateParams, error) {
	return nil, errors.New("ws: permessage-deflate not implemented yet")
}
