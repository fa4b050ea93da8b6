package proxy

import (
	"strings"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// FuzzCanonicalPath: the canonical form starts with "/", holds no empty or
// dot segment, is stable, and keeps the protected prefix "/admin": a
// spelling that any backend model reads as inside /admin is refused, holds
// an encoded slash (refused unless the route opts in), or is matched to
// /admin; and the form forwarded upstream is never read by a model as
// inside /admin unless it is matched to /admin.
func FuzzCanonicalPath(f *testing.F) {
	for _, p := range []string{
		"/", "//admin/secret.txt", "/%2Fadmin/secret.txt", "/ADMIN", "/%61dmin", "/public/%2e%2e/admin",
		"/.%2e/admin/", "/admin%2f..%2f", "/a/b/..", "/caf%c3%a9", `/a\b`, "/admin%00", "/x//..//admin/.",
	} {
		f.Add(p)
	}
	const prefix = "/admin"
	f.Fuzz(func(t *testing.T, p string) {
		c, slash, ok := canonicalPath(p)
		if !ok {
			return // refused with 400: no route is reached
		}
		if !strings.HasPrefix(c, "/") || strings.Contains(c, "//") || strings.Contains(c, "/./") ||
			strings.Contains(c, "/../") || strings.HasSuffix(c, "/.") || strings.HasSuffix(c, "/..") {
			t.Fatalf("canonicalPath(%q) = %q is not canonical", p, c)
		}
		if again, againSlash, againOK := canonicalPath(c); again != c || againSlash != slash || !againOK {
			t.Fatalf("not idempotent: %q -> %q -> %q (%t)", p, c, again, againOK)
		}
		if slash {
			return // refused with 400 unless the route opts in; TestPathCorpus covers opting in
		}
		matched := route.PathHasPrefix(c, prefix)
		if name, in := insideAny(p, prefix); in && !matched {
			t.Fatalf("%s reads %q as inside %s, but its canonical form %q is not matched to it", name, p, prefix, c)
		}
		if name, in := insideAny(c, prefix); in && !matched {
			t.Fatalf("%s reads the forwarded %q as inside %s, but it is not matched to it (from %q)", name, c, prefix, p)
		}
	})
}
