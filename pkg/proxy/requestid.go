package proxy

import (
	"math/rand/v2"
	"net/http"
)

// Every request carries an X-Request-ID (docs/labels.md, "Request IDs"):
// the one a trusted proxy sent, or a new one. It is sent upstream, returned
// to the client on every response (errors and redirects included) and
// written in the access log as request_id.

const requestIDHeader = "X-Request-Id" // canonical form of X-Request-ID

// maxRequestIDLen bounds a request id taken from a trusted proxy.
const maxRequestIDLen = 200

// assignRequestID gives the exchange its request id and puts it on the
// response.
func assignRequestID(ex *exchange, r *http.Request) {
	id := ""
	if ex.trusted {
		if v := r.Header[requestIDHeader]; len(v) == 1 && validRequestID(v[0]) {
			id = v[0]
		}
	}
	if id == "" {
		id = newRequestID()
	}
	ex.requestID = id
	ex.requestIDv[0] = id
	ex.Header()[requestIDHeader] = ex.requestIDValue()
}

// requestIDValue is the header value of the request id, shared read only
// (an Add appends to a copy: its capacity is 1), so that neither header
// allocates one.
func (ex *exchange) requestIDValue() []string {
	if ex.requestIDv[0] != ex.requestID { // an exchange made without assignRequestID
		return []string{ex.requestID}
	}
	return ex.requestIDv[:1:1]
}

// newRequestID returns 128 random bits in hex. math/rand/v2's global
// generator is ChaCha8 seeded from the system per thread: unpredictable,
// and without a system call or a lock.
func newRequestID() string {
	const hex = "0123456789abcdef"
	var b [32]byte
	for half := range 2 {
		u := rand.Uint64()
		for i := range 16 {
			b[half*16+i] = hex[u&0xf]
			u >>= 4
		}
	}
	return string(b[:])
}

// validRequestID accepts 1 to 200 visible ASCII characters: nothing a log
// line or a header could be confused by.
func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\' {
			return false
		}
	}
	return true
}

// setRequestID puts the exchange's id on the outbound request, replacing
// whatever the client sent.
func setRequestID(ex *exchange, out *http.Request) {
	out.Header[requestIDHeader] = ex.requestIDValue()
}
