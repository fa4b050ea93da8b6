package certs

import (
	"cmp"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
)

// A SettingError is a problem with one setting of a Config. Field names the
// Config field (CA, CARoots, DataDir, CertsDir or ChallengeType); Err says what is wrong
// and what to do. cmd/ingress reports it under the name of its own setting.
type SettingError struct {
	Field string
	Err   error
}

func (e *SettingError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// Check reports every problem with cfg's settings at once, each a
// *SettingError: the ACME directory URL, the roots file, the data directory,
// the certificates directory and the challenge type. It only reads (the roots file and the
// certificates); it creates and writes nothing, so it can run before
// anything starts. New does not repeat it.
func (cfg Config) Check() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &SettingError{Field: field, Err: fmt.Errorf(format, a...)})
	}
	ca := cmp.Or(cfg.CA, DefaultCA)
	if u, err := url.Parse(ca); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("CA", "is not an https:// URL; set the ACME directory URL, e.g. %s, or leave it empty", DefaultCA)
	}
	if cfg.CARoots != "" {
		if _, err := loadRoots(cfg.CARoots); err != nil {
			bad("CARoots", "%w", err)
		}
	}
	if cfg.Cache == nil {
		const help = "set it to a writable directory for the ACME account and certificates"
		if cfg.DataDir == "" {
			bad("DataDir", "is empty; %s", help)
		} else if fi, err := os.Stat(cfg.DataDir); err == nil && !fi.IsDir() {
			bad("DataDir", "is not a directory; %s", help)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			bad("DataDir", "%w; %s", err, help) // a missing one is created
		}
	}
	if cfg.CertsDir != "" {
		if _, err := loadFiles(cfg.CertsDir); err != nil {
			bad("CertsDir", "%w; point it at a readable directory of <name>.crt and <name>.key files, or leave it empty", err)
		}
	}
	switch cfg.ChallengeType {
	case "", ChallengeHTTP01, ChallengeTLSALPN01:
	default:
		bad("ChallengeType", "is not an ACME challenge type; set %s or %s, or leave it empty for both", ChallengeHTTP01, ChallengeTLSALPN01)
	}
	return errors.Join(errs...)
}

// loadRoots reads the PEM file of roots to trust for the ACME server.
func loadRoots(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w; point it at a readable PEM file of the ACME server's root certificates, or leave it empty to trust the system roots", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("holds no PEM certificate; it must contain -----BEGIN CERTIFICATE----- blocks of the ACME server's roots")
	}
	return pool, nil
}
