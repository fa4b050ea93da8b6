package proxy

import (
	"net/url"
	"testing"
)

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      string
		wantSlash bool
		refused   bool
	}{
		{name: "root", in: "/", want: "/"},
		{name: "empty", in: "", want: "/"},
		{name: "plain", in: "/api/v1/items", want: "/api/v1/items"},
		{name: "trailing slash kept", in: "/api/", want: "/api/"},
		{name: "sub-delims kept", in: "/a!$&'()*+,;=:@b", want: "/a!$&'()*+,;=:@b"},
		{name: "doubled slash", in: "//admin/secret.txt", want: "/admin/secret.txt"},
		{name: "many slashes", in: "///a////b//", want: "/a/b/"},
		{name: "dot segment", in: "/./admin", want: "/admin"},
		{name: "dot-dot", in: "/public/../admin", want: "/admin"},
		{name: "dot-dot above root", in: "/../../admin", want: "/admin"},
		{name: "trailing dot-dot leaves a directory", in: "/a/b/..", want: "/a/"},
		{name: "trailing dot", in: "/a/.", want: "/a/"},
		{name: "only dots", in: "/..", want: "/"},
		{name: "dots inside a name are no segment", in: "/a..b/.c/...", want: "/a..b/.c/..."},
		{name: "escaped dots", in: "/public/%2e%2E/admin", want: "/admin"},
		{name: "half-escaped dots", in: "/public/.%2e/admin", want: "/admin"},
		{name: "unreserved decoded", in: "/%61dmin/%7Euser/%2D%5F", want: "/admin/~user/-_"},
		{name: "reserved kept, hex upper-cased", in: "/a%3bb/%3f/%25", want: "/a%3Bb/%3F/%25"},
		{name: "non-ASCII kept escaped", in: "/caf%c3%a9", want: "/caf%C3%A9"},
		{name: "raw non-ASCII escaped", in: "/caf\xc3\xa9", want: "/caf%C3%A9"},
		{name: "raw quote escaped", in: `/a"b`, want: "/a%22b"},
		{name: "space escaped", in: "/a b", want: "/a%20b"},
		{name: "encoded slash kept and reported", in: "/%2Fadmin", want: "/%2Fadmin", wantSlash: true},
		{name: "lower-case encoded slash", in: "/a%2fb", want: "/a%2Fb", wantSlash: true},
		{name: "encoded backslash", in: "/a%5cb", want: "/a%5Cb", wantSlash: true},
		{name: "encoded slash is not a separator for dots", in: "/a/..%2F..%2Fadmin", want: "/a/..%2F..%2Fadmin", wantSlash: true},
		{name: "raw backslash", in: `/a\b`, refused: true},
		{name: "escaped NUL", in: "/a%00", refused: true},
		{name: "escaped newline", in: "/a%0a", refused: true},
		{name: "escaped DEL", in: "/a%7F", refused: true},
		{name: "raw control", in: "/a\tb", refused: true},
		{name: "bad escape", in: "/a%zz", refused: true},
		{name: "truncated escape", in: "/a%2", refused: true},
		{name: "bad escape after a change", in: "//a%g0", refused: true},
		{name: "asterisk form", in: "*", refused: true},
		{name: "relative", in: "admin", refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, slash, ok := canonicalPath(tc.in)
			if tc.refused {
				if ok {
					t.Fatalf("canonicalPath(%q) = %q, want refused", tc.in, got)
				}
				return
			}
			if !ok || got != tc.want || slash != tc.wantSlash {
				t.Fatalf("canonicalPath(%q) = %q, slash %t, ok %t; want %q, slash %t", tc.in, got, slash, ok, tc.want, tc.wantSlash)
			}
		})
	}
}

// TestCanonicalPathNoAlloc: an already canonical path (the hot path) is
// checked without allocating.
func TestCanonicalPathNoAlloc(t *testing.T) {
	for _, p := range []string{"/", "/api/v1/items", "/static/app.3f2a.js", "/a%3Bb/%C3%A9/", "/a%2Fb"} {
		if n := testing.AllocsPerRun(100, func() { _, _, _ = canonicalPath(p) }); n != 0 {
			t.Errorf("canonicalPath(%q) allocates %.0f times", p, n)
		}
	}
}

// TestSetPathRequestURI: after setPath the URL writes exactly the
// canonical path on the request line, whatever the client sent.
func TestSetPathRequestURI(t *testing.T) {
	for _, raw := range []string{"//admin/x?q=1", "/a%3bb/%2e%2e/c", "/caf\xc3\xa9", "/a!b*c", "/%2Fadmin", `/a"b`} {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		c, _, ok := canonicalPath(requestPath(u))
		if !ok {
			t.Fatalf("%q refused", raw)
		}
		setPath(u, c)
		if got := u.EscapedPath(); got != c {
			t.Errorf("%q: EscapedPath() = %q after setPath, want the canonical %q", raw, got, c)
		}
	}
}
