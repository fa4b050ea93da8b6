package proxy

import (
	"net/http"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestAuthCacheRemembersOnlySuccess: a success is cached under the hash it
// was checked against; failures are not, and a new hash for the same user
// needs a fresh bcrypt check.
func TestAuthCacheRemembersOnlySuccess(t *testing.T) {
	hash := func(pw string) []byte {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	oldHash, newHash := hash("old"), hash("new")
	req := func(user, pass string) *http.Request {
		r, _ := http.NewRequest("GET", "http://app.test/", nil)
		r.SetBasicAuth(user, pass)
		return r
	}
	var c authCache
	users := []route.BasicUser{{User: "alice", Hash: oldHash}}

	if c.check(users, req("alice", "wrong")) {
		t.Fatal("wrong password accepted")
	}
	if len(c.ok) != 0 {
		t.Fatalf("a failure was cached: %d entries", len(c.ok))
	}
	if !c.check(users, req("alice", "old")) {
		t.Fatal("right password refused")
	}
	if !c.has(c.key(oldHash, "old")) {
		t.Fatal("success not cached")
	}
	rotated := []route.BasicUser{{User: "alice", Hash: newHash}}
	if c.check(rotated, req("alice", "old")) {
		t.Fatal("old password accepted after the hash changed")
	}
	if !c.check(rotated, req("alice", "new")) {
		t.Fatal("new password refused")
	}
	if c.check(users, req("mallory", "old")) {
		t.Fatal("unknown user accepted with a cached password")
	}
}
