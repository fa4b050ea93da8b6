package proxy

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

func bcryptLine(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

// replaceFile writes data to path the way a Swarm secret rotation or a
// config tool does: a new file renamed over the old one (a new inode).
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestBasicAuthFile: auth.basic_file through the proxy: a user of the file
// passes; others get 401 with the challenge and never reach the upstream.
// The file is read again when it changes (checked every 2 s on the proxy's
// clock), whether replaced by rename or rewritten in place; an entry that
// is not bcrypt, or a missing file, closes the route (503, logged) until
// it is fixed.
func TestBasicAuthFile(t *testing.T) {
	var reached atomic.Int32
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		if r.Header.Get("Authorization") == "" {
			t.Error("the upstream did not get the Authorization header")
		}
		w.Write([]byte("secret"))
	})
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	replaceFile(t, file, "# ops\n"+bcryptLine(t, "alice", "one")+"\n"+bcryptLine(t, "bob", "two"))

	c := newClock()
	var logs syncBuffer
	rt := testRoute("a.test", addrOf(t, up))
	rt.BasicAuthFile = file
	f := newFixture(t, Config{Now: c.Now, Logger: newLogger(&logs)}, table(rt))
	try := func(user, pass string) *http.Response {
		req := f.newRequest(t, "GET", "a.test", "/", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res := f.do(t, req)
		readAll(t, res.Body)
		return res
	}
	expect := func(step, user, pass string, want int) {
		t.Helper()
		before := reached.Load()
		res := try(user, pass)
		if res.StatusCode != want {
			t.Fatalf("%s: %s:%s got %d, want %d", step, user, pass, res.StatusCode, want)
		}
		if want == http.StatusUnauthorized && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `Basic realm="svc"`) {
			t.Fatalf("%s: 401 without the challenge: %q", step, res.Header.Get("WWW-Authenticate"))
		}
		if got := reached.Load() - before; (want == http.StatusOK) != (got == 1) {
			t.Fatalf("%s: the upstream was reached %d times for a %d", step, got, want)
		}
	}
	expect("first read", "alice", "one", 200)
	expect("first read", "bob", "two", 200)
	expect("first read", "bob", "one", 401)
	expect("first read", "carol", "three", 401)
	expect("first read", "", "", 401)

	// Swarm rotates the secret: a new file replaces the old.
	replaceFile(t, file, bcryptLine(t, "carol", "three"))
	c.Add(time.Second)
	expect("rotated, not checked yet", "alice", "one", 200)
	c.Add(filePollInterval)
	expect("rotated", "alice", "one", 401)
	expect("rotated", "carol", "three", 200)

	// An entry of another kind closes the route: 503, logged once.
	replaceFile(t, file, bcryptLine(t, "carol", "three")+"dave:$apr1$abcdefgh$0123456789012345678901\n")
	c.Add(filePollInterval)
	expect("MD5 entry", "carol", "three", 503)
	expect("MD5 entry", "dave", "x", 503)
	if n := strings.Count(logs.String(), "only bcrypt entries are accepted"); n != 1 {
		t.Fatalf("the refused file was logged %d times, want 1:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "0123456789012345678901") {
		t.Fatal("the log holds a hash")
	}

	// Rewritten in place (same inode), fixed: served again.
	if err := os.WriteFile(file, []byte(bcryptLine(t, "erin", "five")), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Add(filePollInterval)
	expect("fixed in place", "erin", "five", 200)
	expect("fixed in place", "carol", "three", 401)

	// Gone: closed.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	c.Add(filePollInterval)
	expect("removed", "erin", "five", 503)

	// Empty (comments only): nobody passes.
	replaceFile(t, file, "# nobody\n")
	c.Add(filePollInterval)
	expect("empty", "erin", "five", 401)
}

// TestBasicAuthFileAndLabel: with both auth.basic and auth.basic_file a
// user of either list passes.
func TestBasicAuthFileAndLabel(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {})
	file := filepath.Join(t.TempDir(), "htpasswd")
	replaceFile(t, file, bcryptLine(t, "alice", "one"))
	rt := testRoute("a.test", addrOf(t, up))
	rt.BasicAuthFile = file
	line := bcryptLine(t, "bob", "two")
	rt.BasicAuth = []route.BasicUser{{User: "bob", Hash: []byte(strings.TrimSpace(line[len("bob:"):]))}}
	f := newFixture(t, Config{}, table(rt))
	for _, tc := range []struct {
		user, pass string
		want       int
	}{{"alice", "one", 200}, {"bob", "two", 200}, {"alice", "two", 401}, {"bob", "one", 401}} {
		req := f.newRequest(t, "GET", "a.test", "/", nil)
		req.SetBasicAuth(tc.user, tc.pass)
		if res := f.do(t, req); res.StatusCode != tc.want {
			t.Errorf("%s:%s got %d, want %d", tc.user, tc.pass, res.StatusCode, tc.want)
		}
	}
}

func TestParseHtpasswd(t *testing.T) {
	good := "$2y$04$" + strings.Repeat("a", 53)
	tests := []struct {
		name, in string
		users    int
		wantErr  string
	}{
		{name: "bcrypt entries, comments, blank lines, CRLF", in: "# x\r\nalice:" + good + "\r\n\r\nbob:" + good, users: 2},
		{name: "MD5", in: "alice:$apr1$x$y", wantErr: `line 1: user "alice": only bcrypt`},
		{name: "SHA", in: "alice:" + good + "\nbob:{SHA}abc=", wantErr: `line 2: user "bob": only bcrypt`},
		{name: "crypt", in: "alice:abJnggxhB/yWI", wantErr: "only bcrypt"},
		{name: "no colon", in: "alice", wantErr: "line 1: not user:hash"},
		{name: "twice", in: "a:" + good + "\na:" + good, wantErr: "listed twice"},
		{name: "bad cost", in: "a:$2y$99$" + strings.Repeat("a", 53), wantErr: "only bcrypt"},
		{name: "empty", in: "", users: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			users, err := parseHtpasswd([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.ContainsAny(err.Error(), "{}") ||
					strings.Contains(err.Error(), "aaaaaaaa") || strings.Contains(err.Error(), "$apr1$x") || strings.Contains(err.Error(), "abJngg") {
					t.Fatalf("err %v, want %q (and no hash)", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(users) != tc.users {
				t.Fatalf("%d users, %v", len(users), err)
			}
		})
	}
}

// FuzzParseHtpasswd: never panics; every user it returns has a bcrypt hash.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add([]byte("alice:$2y$04$" + strings.Repeat("a", 53) + "\n# c\n"))
	f.Add([]byte("a:$apr1$x$y\n"))
	f.Add([]byte(":\n:x\nx:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := parseHtpasswd(data)
		if err != nil {
			return
		}
		for _, u := range users {
			if u.User == "" || !isBcrypt(string(u.Hash)) || bytes.ContainsAny([]byte(u.User), ":\n") {
				t.Fatalf("user %q hash %q", u.User, u.Hash)
			}
		}
	})
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
