package control

import (
	"bytes"
	"testing"
)

// TestStickyKey: every process that mounts the same secret derives the same
// sticky cookie key, distinct from the secret and from another secret's.
func TestStickyKey(t *testing.T) {
	a1, err := NewSecret([]byte("0123456789abcdef0123456789abcdef\n"), "TEST")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := NewSecret([]byte("0123456789abcdef0123456789abcdef"), "TEST")
	b, _ := NewSecret([]byte("fedcba9876543210fedcba9876543210"), "TEST")
	if k := a1.StickyKey(); len(k) != 32 || !bytes.Equal(k, a2.StickyKey()) {
		t.Fatalf("same secret, different keys: %x %x", k, a2.StickyKey())
	}
	if bytes.Equal(a1.StickyKey(), b.StickyKey()) || bytes.Equal(a1.StickyKey(), a1.stateKey) {
		t.Fatal("the sticky key must depend on the secret and differ from the other derived keys")
	}
}
