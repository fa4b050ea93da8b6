package control

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The state file, written after every change of the table or certificates:
//
//	magic "sic-edge1" | 12-byte random nonce | AES-256-GCM(JSON of savedState, aad = magic)
//
// The key is derived from the control secret (see secret.go), so the file
// holds the certificates' private keys encrypted, and a file from another
// cluster (another secret) or a damaged one fails authentication and is
// ignored with an error in the log.
const stateMagic = "sic-edge1"

// savedState is what the file holds.
type savedState struct {
	Saved time.Time `json:"saved"`
	From  string    `json:"from"` // the controller whose table it is
	Table *Table    `json:"table"`
	Certs []Cert    `json:"certs"`
}

func (s *Secret) stateAEAD() (cipher.AEAD, error) {
	block, err := aes.NewCipher(s.stateKey)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCM(block)
}

// save writes the held state to the state file, atomically.
func (e *Edge) save() {
	if e.cfg.StateFile == "" {
		return
	}
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	e.mu.Lock()
	st := savedState{Saved: time.Now(), From: e.from, Table: e.wire}
	for _, h := range sortedKeys(e.certs) {
		st.Certs = append(st.Certs, e.certs[h].Cert)
	}
	e.mu.Unlock()
	if err := writeState(e.cfg.StateFile, e.cfg.Secret, st); err != nil {
		e.log.Error().Err(err).Str(fieldFile, e.cfg.StateFile).Msg("save the edge state; a restart without a controller would serve an older state")
	}
}

func writeState(path string, secret *Secret, st savedState) error {
	plain, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	aead, err := secret.stateAEAD()
	if err != nil {
		return err
	}
	out := make([]byte, len(stateMagic)+aead.NonceSize(), len(stateMagic)+aead.NonceSize()+len(plain)+aead.Overhead())
	copy(out, stateMagic)
	if _, err := rand.Read(out[len(stateMagic):]); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	out = aead.Seal(out, out[len(stateMagic):], plain, []byte(stateMagic))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".edge-state-*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace state file: %w", err)
	}
	return nil
}

var errStateFile = errors.New("the file is damaged or was written with another control secret")

func readState(path string, secret *Secret) (savedState, error) {
	var st savedState
	data, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	aead, err := secret.stateAEAD()
	if err != nil {
		return st, err
	}
	head := len(stateMagic) + aead.NonceSize()
	if len(data) < head+aead.Overhead() || string(data[:len(stateMagic)]) != stateMagic {
		return st, errStateFile
	}
	plain, err := aead.Open(nil, data[len(stateMagic):head], data[head:], []byte(stateMagic))
	if err != nil {
		return st, errStateFile
	}
	if err := json.Unmarshal(plain, &st); err != nil {
		return st, fmt.Errorf("%w: %v", errStateFile, err)
	}
	return st, nil
}

// load restores the state file, if any. A file that cannot be used is
// reported and ignored: the edge waits for a controller instead.
func (e *Edge) load() {
	if e.cfg.StateFile == "" {
		return
	}
	st, err := readState(e.cfg.StateFile, e.cfg.Secret)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		e.log.Error().Err(err).Str(fieldFile, e.cfg.StateFile).Str(fieldSetting, e.cfg.Secret.setting).
			Msg("ignored the saved edge state (damaged, or the control secret changed); waiting for a controller")
		return
	}
	if st.Table == nil {
		return
	}
	e.mu.Lock()
	e.table, e.wire, e.from, e.confirmed = st.Table.Build(), st.Table, st.From, st.Saved
	for _, c := range st.Certs {
		if parsed, err := parsePEM(c.PEM); err == nil {
			e.certs[c.Host] = &heldCert{Cert: c, tls: parsed}
		}
	}
	t := e.table
	e.mu.Unlock()
	e.cfg.OnTable(t)
	e.log.Info().Str(fieldFile, e.cfg.StateFile).Time("saved", st.Saved).Str(fieldController, st.From).
		Msg("serving the saved edge state until a controller answers")
}
