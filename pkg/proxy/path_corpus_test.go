package proxy

import (
	"strings"
	"testing"
)

// corpusSpellings spells paths under and around /admin in many ways:
// doubled slashes, escaped slashes, backslashes and dots, mixed case, dot
// segments, trailing dots and slashes, control characters.
func corpusSpellings() []string {
	leads := []string{"/", "//", "///", "/./", "/x/../", "/%2e/", "/%2E%2E/", "/.%2e/", "/x/%2e%2e/",
		"/x/..%2f", "/%2f", "/%5C", `/\`, `/x/..\`, "/x%2F..%2F"}
	names := []string{"admin", "ADMIN", "Admin", "%61dmin", "%41DMIN", "adm%69n", "%61%64%6d%69%6e", "admin.", "admin%2e", "adminx", "admi"}
	tails := []string{"", "/", "//", "/secret.txt", "//secret.txt", "/./secret.txt", "%2fsecret.txt", "%2Fsecret.txt",
		"%5csecret.txt", `\secret.txt`, "/x/../secret.txt", "/%2e/secret.txt", "/secret.txt/", "/secret.txt/.",
		"/.", "/..", "/%2e%2e", "/../admin/secret.txt", "%00", "/secret.txt%00", "%3bx/secret.txt", ";x/secret.txt", "/%zz"}
	var out []string
	for _, l := range leads {
		for _, n := range names {
			for _, tl := range tails {
				out = append(out, l+n+tl)
			}
		}
	}
	return out
}

// TestPathCorpus sends every spelling to a real Handler (as raw bytes, also
// in absolute form) and checks, with the backend models of
// pathmodels_test.go, that a spelling any model reads as inside /admin meets
// /admin's auth (401, never the "/" backend) or is refused (400); that with
// credentials it reaches the /admin backend as its canonical path; and that
// nothing the "/" backend receives is read by any model as inside /admin.
func TestPathCorpus(t *testing.T) {
	rig := newAttackRig(t)
	spellings := corpusSpellings()
	for _, p := range spellings[:len(spellings)/8] {
		spellings = append(spellings, "http://site.test"+p)
	}
	inside, failures := 0, 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		if failures++; failures >= 20 {
			t.FailNow()
		}
	}
	for _, target := range spellings {
		p := target
		if rest, ok := strings.CutPrefix(target, "http://site.test"); ok {
			p = rest
		}
		model, in := insideAny(p, "/admin")
		got := rig.send(t, rawGET(target, "site.test", false))
		if got.from == "public" {
			if m, bad := insideAny(strings.SplitN(got.path, "?", 2)[0], "/admin"); bad {
				fail("%q: the / backend received %q, which %s reads as inside /admin", target, got.path, m)
			}
		}
		if !in {
			continue
		}
		inside++
		if got.status != 400 && (got.status != 401 || got.from != "") {
			fail("%q (inside /admin for %s): got %d from %q, want 401 from /admin's auth or 400", target, model, got.status, got.from)
			continue
		}
		if got.status == 400 {
			continue
		}
		got = rig.send(t, rawGET(target, "site.test", true))
		if got.status != 200 || got.from != "admin" {
			fail("%q with credentials: got %d from %q, want 200 from the /admin backend", target, got.status, got.from)
			continue
		}
		if c, _, _ := canonicalPath(p); got.path != c {
			fail("%q with credentials: the /admin backend received %q, want the canonical %q", target, got.path, c)
		}
	}
	if inside < 100 {
		t.Fatalf("only %d of %d spellings are inside /admin for some model: the corpus lost its teeth", inside, len(spellings))
	}
	t.Logf("%d spellings, %d inside /admin for at least one backend model", len(spellings), inside)
}
