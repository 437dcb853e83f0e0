package ws

// TEMPORARY (handshake owner): the contract names the handshake calls,
// forwarding to the compression owner's implementations in negotiate.go.
// Whoever renames those to the contract names deletes this file in the same
// step (the duplicate definitions will not compile).

import "net/http"

func (o *CompressionOptions) serverNegotiate(h http.Header) (p *deflateParams, response string, err error) {
	return o.negotiateServer(h)
}

func (o *CompressionOptions) clientOffer() string { return o.offer() }

func (o *CompressionOptions) clientAccept(response string) (*deflateParams, error) {
	return o.acceptResponse(response)
}
