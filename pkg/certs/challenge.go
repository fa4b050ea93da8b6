package certs

import (
	"context"
	"net/http"
	"strings"
)

// autocert keeps pending challenge answers in its cache, under these keys:
// "<token>+http-01" holds an HTTP-01 key authorization and "<host>+token" a
// TLS-ALPN-01 certificate (private key and chain in PEM).
const (
	http01Suffix  = "+http-01"
	tlsALPNSuffix = "+token"

	// HTTP01Path is the URL path prefix of HTTP-01 validation requests.
	HTTP01Path = "/.well-known/acme-challenge/"
)

// HTTP01Key is the cache key of an HTTP-01 token's answer.
func HTTP01Key(token string) string { return token + http01Suffix }

// TLSALPN01Key is the cache key of a host's TLS-ALPN-01 certificate.
func TLSALPN01Key(host string) string { return host + tlsALPNSuffix }

// IsChallengeKey reports whether a cache key holds a challenge answer.
func IsChallengeKey(key string) bool {
	return strings.HasSuffix(key, http01Suffix) || strings.HasSuffix(key, tlsALPNSuffix)
}

// HTTP01Token returns the token of an HTTP-01 validation request's path.
func HTTP01Token(path string) (string, bool) {
	token, ok := strings.CutPrefix(path, HTTP01Path)
	return token, ok && token != "" && !strings.Contains(token, "/")
}

// Challenges receives every challenge answer autocert stores and deletes,
// after the cache did: a controller passes it to its edges. Put returns when
// the answer can be served everywhere it must be (or it gave up waiting):
// autocert lets the CA validate only after Put returns.
type Challenges interface {
	Put(ctx context.Context, key string, data []byte)
	Delete(key string)
}

// answerHTTP01 serves an HTTP-01 validation from the cache when it holds the
// token, whatever the table says: another instance sharing the cache may be
// the one ordering, and the table here may not name the host yet.
func (m *Manager) answerHTTP01(w http.ResponseWriter, r *http.Request) bool {
	token, ok := HTTP01Token(r.URL.Path)
	if !ok {
		return false
	}
	data, err := m.cache.Get(r.Context(), HTTP01Key(token))
	if err != nil {
		return false
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write(data)
	return true
}
