package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Files a route names (auth.basic_file, error_page.<code> with a path) are
// read by the process that serves traffic, when first needed, and read
// again when they change: their modification time, size or inode (a Swarm
// secret or config rotated, a file replaced by rename) is checked at most
// every filePollInterval, by the request that finds the check due. A file
// that cannot be read or parsed keeps its error until it is fixed; the
// route's step then fails closed (docs/labels.md, "Auth from a file").

// filePollInterval is how often a file is checked for changes.
const filePollInterval = 2 * time.Second

// maxPolledFile bounds what is read of a file: an htpasswd or an error page
// larger than this is refused.
const maxPolledFile = 1 << 20

// Log field names of file problems.
const (
	fieldFile = "file"
	fieldKind = "kind"
)

// polledFile is one file, parsed into a T.
type polledFile[T any] struct {
	path  string
	kind  string // for the log: "auth.basic_file", "error_page"
	parse func([]byte) (T, error)
	log   zerolog.Logger

	mu      sync.Mutex
	checked time.Time // last stat; zero: never read
	info    os.FileInfo
	val     T
	err     error
}

func newPolledFile[T any](path, kind string, parse func([]byte) (T, error), log zerolog.Logger) *polledFile[T] {
	return &polledFile[T]{path: path, kind: kind, parse: parse, log: log}
}

// get returns the file's parsed content as of now, reading it again if it
// changed since the last check, which is at most filePollInterval old.
func (f *polledFile[T]) get(now time.Time) (T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.checked.IsZero() && now.Sub(f.checked) < filePollInterval && now.Sub(f.checked) >= 0 {
		return f.val, f.err
	}
	f.checked = now
	info, err := os.Stat(f.path)
	if err == nil && f.info != nil && f.err == nil && sameFile(f.info, info) {
		return f.val, nil
	}
	var zero T
	val, perr := zero, err
	if err == nil {
		val, perr = f.read()
	}
	if perr != nil {
		if f.err == nil || f.err.Error() != perr.Error() {
			f.log.Error().Str(fieldKind, f.kind).Str(fieldFile, f.path).Err(perr).Msg("file unusable until it is fixed: auth.basic_file answers 503, an error page falls back to plain text")
		}
		f.info, f.val, f.err = nil, zero, perr
		return zero, perr
	}
	if f.err != nil || f.info != nil {
		f.log.Info().Str(fieldKind, f.kind).Str(fieldFile, f.path).Msg("file read again")
	}
	f.info, f.val, f.err = info, val, nil
	return val, nil
}

func (f *polledFile[T]) read() (T, error) {
	var zero T
	fh, err := os.Open(f.path)
	if err != nil {
		return zero, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxPolledFile+1))
	if err != nil {
		return zero, err
	}
	if len(data) > maxPolledFile {
		return zero, fmt.Errorf("%s is larger than %d bytes", f.path, maxPolledFile)
	}
	v, err := f.parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", f.path, err)
	}
	return v, nil
}

// sameFile reports whether b is a, unchanged: same inode, size and time.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// parseHtpasswd reads an htpasswd file of bcrypt entries (`htpasswd -B`):
// one user:hash per line; empty lines and lines starting with # are
// skipped. Any other kind of entry (MD5 $apr1$, SHA {SHA}, crypt) is
// refused, and with it the whole file: it names the line and the user,
// never the hash.
func parseHtpasswd(data []byte) ([]route.BasicUser, error) {
	var users []route.BasicUser
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxPolledFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("line %d: not user:hash", n)
		}
		if !isBcrypt(hash) {
			return nil, fmt.Errorf("line %d: user %q: only bcrypt entries are accepted ($2y$, $2a$ or $2b$: make them with `htpasswd -B`)", n, user)
		}
		if seen[user] {
			return nil, fmt.Errorf("line %d: user %q is listed twice", n, user)
		}
		seen[user] = true
		users = append(users, route.BasicUser{User: user, Hash: []byte(hash)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

// isBcrypt reports whether bcrypt can use hash: a full-length hash of a
// known version and a valid cost.
func isBcrypt(hash string) bool {
	if len(hash) != 60 || !(strings.HasPrefix(hash, "$2y$") || strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$")) {
		return false
	}
	_, err := bcrypt.Cost([]byte(hash))
	return err == nil
}

// checkBasicFile runs auth.basic_file: the credentials must be those of a
// user of the file, or, when the route also sets auth.basic, of one of
// those users. A file that cannot be used answers 503 (fail closed).
func (rs *routeState) checkBasicFile(ex *exchange, r *http.Request) bool {
	users, err := rs.files.htpasswd.get(rs.h.clock())
	if err != nil {
		rs.writeError(ex, http.StatusServiceUnavailable)
		return false
	}
	if len(users) > 0 && rs.h.auth.check(users, r) || len(rs.route.BasicAuth) > 0 && rs.h.auth.check(rs.route.BasicAuth, r) {
		return true
	}
	ex.Header().Set("WWW-Authenticate", rs.challenge)
	rs.writeError(ex, http.StatusUnauthorized)
	return false
}
