package certs

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// fileCert is one <name>.crt + <name>.key pair of CertsDir.
type fileCert struct {
	name     string // <name>
	cert     *tls.Certificate
	names    []string // lower-case DNS names it covers; "*.example.com" covers one label
	notAfter time.Time
	err      error // the pair is unusable
}

// fileSet is the parsed content of CertsDir; immutable once built.
type fileSet struct {
	pairs    []*fileCert          // sorted by name, bad ones included
	exact    map[string]*fileCert // host -> pair (the one that expires last)
	wildcard map[string]*fileCert // "example.com" (from "*.example.com") -> pair
	sum      [sha256.Size]byte    // of every file name and content read
}

// match returns the user certificate for host, or nil.
func (s *fileSet) match(host string) *fileCert {
	if s == nil {
		return nil
	}
	host = route.NormalizeHost(host)
	if c := s.exact[host]; c != nil {
		return c
	}
	if _, suffix, ok := strings.Cut(host, "."); ok {
		return s.wildcard[suffix]
	}
	return nil
}

// loadFiles reads every <name>.crt in dir with its <name>.key. Only an
// unreadable directory is an error; a bad pair is kept with its error.
func loadFiles(dir string) (*fileSet, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read certificates directory: %w", err)
	}
	s := &fileSet{exact: map[string]*fileCert{}, wildcard: map[string]*fileCert{}}
	h := sha256.New()
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".crt")
		if !ok || name == "" || strings.HasPrefix(name, ".") {
			continue
		}
		crt, crtErr := os.ReadFile(filepath.Join(dir, name+".crt"))
		key, keyErr := os.ReadFile(filepath.Join(dir, name+".key"))
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(crt))
		h.Write(crt)
		h.Write(key)
		c := &fileCert{name: name}
		switch {
		case crtErr != nil:
			c.err = crtErr
		case keyErr != nil:
			c.err = fmt.Errorf("%s.crt has no readable %s.key: %w", name, name, keyErr)
		default:
			c.err = c.parse(crt, key)
		}
		s.pairs = append(s.pairs, c)
	}
	copy(s.sum[:], h.Sum(nil))
	for _, c := range s.pairs {
		if c.err != nil {
			continue
		}
		for _, n := range c.names {
			idx, key := s.exact, n
			if suffix, ok := strings.CutPrefix(n, "*."); ok {
				idx, key = s.wildcard, suffix
			}
			if old := idx[key]; old == nil || c.notAfter.After(old.notAfter) {
				idx[key] = c
			}
		}
	}
	return s, nil
}

// parse fills c from PEM data: the key must match the first certificate,
// which must name at least one DNS name.
func (c *fileCert) parse(crt, key []byte) error {
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return fmt.Errorf("%s.crt/%s.key: %w", c.name, c.name, err)
	}
	leaf := cert.Leaf
	for _, n := range leaf.DNSNames {
		c.names = append(c.names, route.NormalizeHost(n))
	}
	if len(c.names) == 0 {
		return fmt.Errorf("%s.crt names no DNS host (subjectAltName)", c.name)
	}
	slices.Sort(c.names)
	c.names = slices.Compact(c.names)
	c.cert, c.notAfter = &cert, leaf.NotAfter
	return nil
}

// watchFiles re-reads CertsDir every ReloadInterval and swaps in the new set
// when files changed and then stayed the same for one more interval (a
// .crt and its .key are not replaced at the same instant), logging its bad
// pairs.
func (m *Manager) watchFiles(ctx context.Context) {
	tick := time.NewTicker(m.cfg.ReloadInterval)
	defer tick.Stop()
	var pending [sha256.Size]byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s, err := loadFiles(m.cfg.CertsDir)
		if err != nil {
			m.log.Error().Err(err).Str(fieldFile, m.cfg.CertsDir).Msg("reload user certificates")
			continue
		}
		if s.sum == m.files.Load().sum {
			pending = [sha256.Size]byte{}
			continue
		}
		if s.sum != pending {
			pending = s.sum
			continue
		}
		m.files.Store(s)
		m.logFiles(s)
		m.kick()
		m.mu.Lock()
		m.notify()
		m.mu.Unlock()
	}
}

// logFiles logs what a newly loaded set holds.
func (m *Manager) logFiles(s *fileSet) {
	for _, c := range s.pairs {
		if c.err != nil {
			m.log.Error().Err(c.err).Str(fieldFile, c.name).Msg("user certificate not usable")
			continue
		}
		m.log.Info().Str(fieldFile, c.name).Strs("names", c.names).Time("not_after", c.notAfter).Msg("user certificate loaded")
	}
}
