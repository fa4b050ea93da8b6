package control

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
)

// MinSecretSize is the shortest secret accepted, after a trailing newline is
// removed: `openssl rand -base64 32` writes 44 characters.
const MinSecretSize = 16

// Secret is the shared secret both roles mount, with the keys derived from it.
// Nothing derived from it ever travels on the wire: only public keys and
// signatures do, inside TLS 1.3.
type Secret struct {
	ca       ed25519.PrivateKey // signs every leaf of the channel
	stateKey []byte             // AES-256 key of the edge's persisted state
	sticky   []byte             // HMAC key of the proxy's sticky cookies
	setting  string             // the setting that names the file, for messages
}

// Labels of the derivations: a new label is a new, independent key.
const (
	hkdfSalt      = "swarm-ingress control v1"
	infoCA        = "ed25519 certificate authority"
	infoStateFile = "aes-256-gcm edge state file"
	infoSticky    = "hmac-sha256 sticky cookie"
)

// LoadSecret reads the secret file at path. setting is the name the operator
// knows the file by (e.g. an environment variable); every error names it.
func LoadSecret(path, setting string) (*Secret, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: cannot read the control secret (%w); %s", setting, path, err, secretHelp)
	}
	s, err := NewSecret(data, setting)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", setting, path, err)
	}
	return s, nil
}

// secretHelp says how an operator creates and mounts the secret.
const secretHelp = "create it once with `openssl rand -base64 32 | docker secret create ingress-control -` " +
	"and mount the same secret into the controller and edge services"

// NewSecret derives the channel's keys from the secret's bytes (a trailing
// newline is ignored). setting names the secret in error messages.
func NewSecret(data []byte, setting string) (*Secret, error) {
	data = bytes.TrimRight(data, "\r\n")
	if len(data) < MinSecretSize {
		return nil, fmt.Errorf("the control secret holds %d bytes, want at least %d; %s", len(data), MinSecretSize, secretHelp)
	}
	seed, err := hkdf.Key(sha256.New, data, []byte(hkdfSalt), infoCA, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("derive the CA key: %w", err)
	}
	stateKey, err := hkdf.Key(sha256.New, data, []byte(hkdfSalt), infoStateFile, 32)
	if err != nil {
		return nil, fmt.Errorf("derive the state key: %w", err)
	}
	sticky, err := hkdf.Key(sha256.New, data, []byte(hkdfSalt), infoSticky, 32)
	if err != nil {
		return nil, fmt.Errorf("derive the sticky cookie key: %w", err)
	}
	if setting == "" {
		return nil, errors.New("control: the secret's setting name is required for error messages")
	}
	return &Secret{ca: ed25519.NewKeyFromSeed(seed), stateKey: stateKey, sticky: sticky, setting: setting}, nil
}

// StickyKey is the key that signs sticky cookies (proxy.Config.StickyKey):
// the same on every edge that mounts the secret, so that a client whose
// requests land on several edges keeps its upstream (docs/labels.md,
// "Split, sticky and slow start").
func (s *Secret) StickyKey() []byte { return bytes.Clone(s.sticky) }
