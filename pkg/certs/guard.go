package certs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxGuardBody bounds the request bodies the guard inspects; ACME requests
// are a few kilobytes.
const maxGuardBody = 1 << 20

// guard is the ACME client's transport. It refuses, before anything reaches
// the CA, a new-order request whose identifiers allow rejects. autocert asks
// the host policy before an order from a handshake, but not before renewing
// a certificate it holds; with the guard a host that left the table is never
// ordered again. With challenge set, it also hides from autocert the
// challenges of every other type (see onlyChallenge).
type guard struct {
	next      http.RoundTripper
	allow     func(names []string) error
	challenge string // the one challenge type autocert may use; "": every type
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	out, err := g.check(req)
	if err != nil {
		return nil, err
	}
	resp, err := g.next.RoundTrip(out)
	if err != nil || g.challenge == "" {
		return resp, err
	}
	return onlyChallenge(resp, g.challenge)
}

// check returns the request to send, or an error if it is an order allow
// refuses.
func (g *guard) check(req *http.Request) (*http.Request, error) {
	if req.Method != http.MethodPost || req.Body == nil {
		return req, nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxGuardBody))
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read ACME request: %w", err)
	}
	if names := orderNames(body); len(names) > 0 {
		if err := g.allow(names); err != nil {
			return nil, fmt.Errorf("refused to order a certificate: %w", err)
		}
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return out, nil
}

// orderNames returns the DNS identifiers of an ACME new-order request (a
// flattened JWS whose payload holds "identifiers"), or nil for any other request.
func orderNames(body []byte) []string {
	var jws struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(body, &jws) != nil || jws.Payload == "" {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(jws.Payload)
	if err != nil {
		return nil
	}
	var order struct {
		Identifiers []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"identifiers"`
	}
	if json.Unmarshal(payload, &order) != nil {
		return nil
	}
	var names []string
	for _, id := range order.Identifiers {
		names = append(names, id.Value)
	}
	return names
}
