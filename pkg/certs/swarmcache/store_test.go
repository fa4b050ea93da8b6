package swarmcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

func TestStoreRoundTrip(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, newKeyFile(t))
	ctx := context.Background()

	if _, err := s.Get(ctx, "example.com"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("Get before Put: %v, want ErrCacheMiss", err)
	}
	if err := s.Put(ctx, "example.com", []byte("one")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Put(ctx, "other.example", []byte("other")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got, err := s.Get(ctx, "example.com"); err != nil || string(got) != "one" {
		t.Fatalf("Get = %q, %v; want one", got, err)
	}
	if err := s.Put(ctx, "example.com", []byte("two")); err != nil {
		t.Fatalf("Put replacement: %v", err)
	}
	if got, err := s.Get(ctx, "example.com"); err != nil || string(got) != "two" {
		t.Fatalf("Get after replace = %q, %v; want two", got, err)
	}
	if n := len(e.entries(t, "example.com")); n != 1 {
		t.Fatalf("after replace: %d configs for the key, want exactly 1", n)
	}
	if err := s.Delete(ctx, "example.com"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "example.com"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("Get after Delete: %v, want ErrCacheMiss", err)
	}
	if n := len(e.entries(t, "example.com")); n != 0 {
		t.Fatalf("after Delete: %d configs left for the key", n)
	}
	if got, err := s.Get(ctx, "other.example"); err != nil || string(got) != "other" {
		t.Fatalf("Delete touched another key: Get = %q, %v", got, err)
	}
	if err := s.Delete(ctx, "never.example"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
}

// A second Store (another instance) on the same namespace reads what the
// first wrote: the cache is shared through Swarm.
func TestStoreSharedBetweenInstances(t *testing.T) {
	e := newEnv(t)
	keyFile := newKeyFile(t)
	a, b := e.store(t, keyFile), e.store(t, keyFile)
	ctx := context.Background()
	if err := a.Put(ctx, "tok+http-01", []byte("token value")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "tok+http-01"); err != nil || string(got) != "token value" {
		t.Fatalf("other instance Get = %q, %v", got, err)
	}
}

// While one instance replaces a value again and again, another reads it in
// a loop: every read returns one whole version, never a miss.
func TestStoreReplaceNeverMisses(t *testing.T) {
	e := newEnv(t)
	keyFile := newKeyFile(t)
	writer, reader := e.store(t, keyFile), e.store(t, keyFile)
	ctx := context.Background()
	value := func(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("version %03d;", i)), 400) }
	const versions = 8
	if err := writer.Put(ctx, "example.com", value(0)); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads, putErr = 0, error(nil)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := 1; i <= versions; i++ {
			if err := writer.Put(ctx, "example.com", value(i)); err != nil {
				putErr = err
				return
			}
		}
	}()
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true // one last read after the final Put
		default:
		}
		got, err := reader.Get(ctx, "example.com")
		if err != nil {
			t.Fatalf("read %d during replacement: %v", reads, err)
		}
		var i int
		if _, err := fmt.Sscanf(string(got), "version %03d;", &i); err != nil || !bytes.Equal(got, value(i)) {
			t.Fatalf("read %d returned a partial or foreign value (%d bytes)", reads, len(got))
		}
		reads++
	}
	wg.Wait()
	if putErr != nil {
		t.Fatalf("Put: %v", putErr)
	}
	if got, err := reader.Get(ctx, "example.com"); err != nil || !bytes.Equal(got, value(versions)) {
		t.Fatalf("final Get: %d bytes, %v; want the last version", len(got), err)
	}
	if n := len(e.entries(t, "example.com")); n != 1 {
		t.Fatalf("%d configs for the key after the replacements, want 1", n)
	}
	t.Logf("%d reads during %d replacements", reads, versions)
}

// No config of the namespace holds plaintext: scan every config's data as
// the API returns it.
func TestStoreNoPlaintext(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, newKeyFile(t))
	ctx := context.Background()
	secret := "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIUNIQUEMARKER-4711\n-----END EC PRIVATE KEY-----\n"
	for _, key := range []string{"example.com", "acme_account+key", "example.com+rsa"} {
		if err := s.Put(ctx, key, []byte(secret)); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := e.locker(t, e.api, "holder-1", 0).Lock(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	list := e.configs(t)
	if len(list) < 5 { // 3 entries, the key check, the lock
		t.Fatalf("scanned %d configs, want at least 5", len(list))
	}
	for _, c := range list {
		for _, bad := range []string{"BEGIN", "PRIVATE KEY", "UNIQUEMARKER-4711", "example.com"} {
			if bytes.Contains(c.Spec.Data, []byte(bad)) {
				t.Errorf("config %s holds plaintext %q", c.Spec.Name, bad)
			}
		}
	}
}

func TestStoreRefusesOversizeValue(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, newKeyFile(t))
	err := s.Put(context.Background(), "big.example", make([]byte, MaxValueSize+1))
	if err == nil || !strings.Contains(err.Error(), "Swarm config limit") {
		t.Fatalf("Put of an oversize value: %v, want a size error", err)
	}
	if n := len(e.entries(t, "big.example")); n != 0 {
		t.Fatalf("%d configs created for a refused value", n)
	}
}

func TestNewRefusesAnotherKey(t *testing.T) {
	e := newEnv(t)
	e.store(t, newKeyFile(t)) // the first instance fixes the namespace's key
	other := newKeyFile(t)
	_, err := New(context.Background(), e.config(t, other))
	if err == nil {
		t.Fatal("New with a different key succeeded")
	}
	for _, want := range []string{"key file", other, "same secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestNewRefusesBadKeyFile(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name    string
		keyFile string
	}{
		{name: "missing", keyFile: t.TempDir() + "/absent"},
		{name: "wrong size", keyFile: writeFile(t, []byte("0123456789"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), e.config(t, tt.keyFile))
			if err == nil || !strings.Contains(err.Error(), "key file "+tt.keyFile) {
				t.Fatalf("New: %v, want an error naming the key file", err)
			}
		})
	}
	if n := len(e.configs(t)); n != 0 {
		t.Fatalf("a failed New created %d configs", n)
	}
}

// A version that does not decrypt (another key, tampering) is skipped: the
// newest readable version is returned, and with none the Get is a miss.
func TestStoreUndecryptableIsMiss(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, newKeyFile(t))
	ctx := context.Background()
	foreign, _ := newAEAD(bytes.Repeat([]byte{7}, KeySize))
	plant := func(key string, data []byte) { e.plant(t, key, data) }
	sealedForeign, _ := seal(foreign, "a.example", []byte("x"))
	plant("a.example", sealedForeign)
	if _, err := s.Get(ctx, "a.example"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("Get of a value sealed with another key: %v, want ErrCacheMiss", err)
	}

	if err := s.Put(ctx, "b.example", []byte("good")); err != nil {
		t.Fatal(err)
	}
	plant("b.example", []byte("garbage that is newer"))
	if got, err := s.Get(ctx, "b.example"); err != nil || string(got) != "good" {
		t.Fatalf("Get with a newer tampered version = %q, %v; want the older good one", got, err)
	}
}

// Prune removes superseded versions at once; once configs are older than
// PruneAfter, also keys nobody keeps, leftover challenge tokens and values
// that cannot be decrypted.
func TestPrune(t *testing.T) {
	e := newEnv(t)
	keyFile := newKeyFile(t)
	s := e.store(t, keyFile)
	ctx := context.Background()
	for _, key := range []string{"keep.example", "gone.example", "gone.example+rsa", "acme_account+key", "tok+http-01"} {
		if err := s.Put(ctx, key, []byte("v1 "+key)); err != nil {
			t.Fatal(err)
		}
	}
	// Leftover older versions, as after a crash between create and remove,
	// and a config nobody can decrypt.
	for _, v := range []string{"stale", "newest"} {
		sealed, _ := seal(s.aead, "keep.example", []byte(v))
		e.plant(t, "keep.example", sealed)
	}
	e.plant(t, "junk", []byte("undecryptable"))
	if n := len(e.entries(t, "keep.example")); n != 3 {
		t.Fatalf("planted: %d versions of keep.example, want 3", n)
	}
	keep := KeepHosts(func(host string) bool { return host == "keep.example" })
	counts := func(want map[string]int) {
		t.Helper()
		for key, n := range want {
			if got := len(e.entries(t, key)); got != n {
				t.Errorf("%d configs for %q, want %d", got, key, n)
			}
		}
	}

	// Everything is young: only the superseded versions go.
	removed, err := s.Prune(ctx, keep)
	if err != nil || removed != 2 {
		t.Fatalf("Prune of young configs removed %d (%v), want the 2 superseded versions", removed, err)
	}
	counts(map[string]int{"keep.example": 1, "gone.example": 1, "gone.example+rsa": 1, "acme_account+key": 1, "tok+http-01": 1, "junk": 1})

	// The same configs, seen by a Store whose grace has passed.
	cfg := e.config(t, keyFile)
	cfg.PruneAfter = time.Nanosecond
	late, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	removed, err = late.Prune(ctx, keep)
	if err != nil || removed != 4 {
		t.Fatalf("Prune removed %d (%v), want 4: gone.example, gone.example+rsa, the token, junk", removed, err)
	}
	counts(map[string]int{"keep.example": 1, "gone.example": 0, "gone.example+rsa": 0, "acme_account+key": 1, "tok+http-01": 0, "junk": 0})
	if got, err := s.Get(ctx, "keep.example"); err != nil || string(got) != "newest" {
		t.Fatalf("kept key after Prune = %q, %v; want newest", got, err)
	}
}

func TestKeepHosts(t *testing.T) {
	keep := KeepHosts(func(host string) bool { return host == "a.example" })
	tests := []struct {
		key  string
		want bool
	}{
		{key: "a.example", want: true},
		{key: "a.example+rsa", want: true},
		{key: "a.example+token", want: false},
		{key: "b.example", want: false},
		{key: "b.example+rsa", want: false},
		{key: "acme_account+key", want: true},
		{key: "acme_account.key", want: true},
		{key: "Zm9v+http-01", want: false},
	}
	for _, tt := range tests {
		if got := keep(tt.key); got != tt.want {
			t.Errorf("keep(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}
