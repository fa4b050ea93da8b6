package proxy

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// authCacheSize bounds the remembered successful logins; when full the cache
// is emptied and refills from the next logins.
const authCacheSize = 4096

// authCache remembers (bcrypt hash, password) pairs that bcrypt accepted, so
// that a logged-in client does not cost a bcrypt comparison (tens of
// milliseconds of CPU) on every request. Keys are a SHA-256 over a random
// per-process key, the hash and the password: the cache holds no password,
// only proof of a past success, and a changed hash no longer matches.
// Failures are never cached.
type authCache struct {
	once sync.Once
	salt [32]byte
	mu   sync.RWMutex
	ok   map[[32]byte]struct{}
}

// dummyHashes holds, by bcrypt cost, a hash compared against when the user
// is unknown, so that unknown and known users take about the same time.
var dummyHashes sync.Map // int -> []byte

func dummyHash(cost int) []byte {
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte)
	}
	h, err := bcrypt.GenerateFromPassword([]byte("unknown user"), cost)
	if err != nil {
		h, _ = bcrypt.GenerateFromPassword([]byte("unknown user"), bcrypt.DefaultCost)
	}
	dummyHashes.Store(cost, h)
	return h
}

// check reports whether r carries Basic credentials of one of users.
func (c *authCache) check(users []route.BasicUser, r *http.Request) bool {
	name, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	var hash []byte
	found := false
	for _, u := range users {
		if subtle.ConstantTimeCompare([]byte(u.User), []byte(name)) == 1 && !found {
			hash, found = u.Hash, true
		}
	}
	if !found {
		cost, err := bcrypt.Cost(users[0].Hash)
		if err != nil {
			cost = bcrypt.DefaultCost
		}
		hash = dummyHash(cost)
	}
	key := c.key(hash, pass)
	if found && c.has(key) {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil || !found {
		return false
	}
	c.add(key)
	return true
}

func (c *authCache) key(hash []byte, pass string) [32]byte {
	c.once.Do(func() {
		_, _ = rand.Read(c.salt[:]) // crypto/rand.Read never fails
		c.ok = map[[32]byte]struct{}{}
	})
	d := sha256.New()
	d.Write(c.salt[:])
	d.Write(hash)
	d.Write([]byte{0})
	d.Write([]byte(pass))
	var k [32]byte
	d.Sum(k[:0])
	return k
}

func (c *authCache) has(k [32]byte) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.ok[k]
	return ok
}

func (c *authCache) add(k [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ok) >= authCacheSize {
		clear(c.ok)
	}
	c.ok[k] = struct{}{}
}
