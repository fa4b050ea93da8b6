package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/control"
	"github.com/swarm-ingress/swarm-ingress/pkg/discovery"
)

// Config holds every setting (docs/settings.md), validated.
type Config struct {
	HTTPAddr       string
	HTTPSAddr      string
	AdminAddr      string
	Networks       []string
	RoutesFile     string
	LabelPrefix    string
	ACMEEmail      string
	ACMECA         string
	ACMECARoots    string
	ACMEChallenge  string // "", certs.ChallengeHTTP01 or certs.ChallengeTLSALPN01
	DataDir        string
	CertsDir       string
	Cache          string // "dir" or "swarm"
	CacheKeyFile   string
	ControlAddr    string          // controller: the channel's listener; edge: its port is the controllers'
	Controllers    control.Locator // edge: where the controllers are
	ControlSecret  *control.Secret // controller and edge
	TrustedProxies []netip.Prefix
	NotFoundPage   string // file answered with 404 for hosts and paths no route serves
	ShutdownGrace  time.Duration
	LogLevel       zerolog.Level
	LogFormat      string // "json" or "console"
}

// setting is one INGRESS_* variable: its default and its flag. Each has a
// row in docs/settings.md (TestSettingsDocumented).
type setting struct {
	env, def, usage string
}

var settings = []setting{
	{"INGRESS_HTTP_ADDR", ":80", "HTTP listener (ACME HTTP-01, redirects, plain routes)"},
	{"INGRESS_HTTPS_ADDR", ":443", "HTTPS listener"},
	{"INGRESS_ADMIN_ADDR", "127.0.0.1:8080", "admin listener: /healthz /readyz /metrics /api/routes /api/certs /api/match /"},
	{"INGRESS_NETWORK", "", "comma-separated networks to reach services on (default: the overlay networks of the ingress's own container)"},
	{"INGRESS_ROUTES_FILE", "", "YAML file of static routes, watched for changes"},
	{"INGRESS_LABEL_PREFIX", discovery.DefaultLabelPrefix, "prefix of the service labels read"},
	{"INGRESS_ACME_EMAIL", "", "ACME account contact"},
	{"INGRESS_ACME_CA", certs.DefaultCA, "ACME directory URL"},
	{"INGRESS_ACME_CA_ROOTS", "", "PEM file of roots to trust for the ACME server"},
	{"INGRESS_ACME_CHALLENGE", "", "the one ACME challenge type used: http-01 or tls-alpn-01 (default both: tls-alpn-01, then http-01 on a new order)"},
	{"INGRESS_DATA_DIR", "/data", "ACME account, certificates, state"},
	{"INGRESS_CERTS_DIR", "", "user-supplied <name>.crt + <name>.key pairs"},
	{"INGRESS_CACHE", "dir", "ACME cache: dir (in INGRESS_DATA_DIR) or swarm (Swarm configs, encrypted)"},
	{"INGRESS_CACHE_KEY_FILE", "/run/secrets/ingress-cache-key", "with INGRESS_CACHE=swarm: file holding the 32-byte key"},
	{"INGRESS_CONTROL_ADDR", ":8443", "controller: listener of the control channel edges connect to (overlay network only, never published); edge: its port is the controllers' port"},
	{"INGRESS_CONTROLLER", "", "edge: the controller service's name (resolved as tasks.<name> on Swarm's DNS), or a comma-separated list of host:port"},
	{"INGRESS_CONTROL_SECRET_FILE", "/run/secrets/ingress-control", "controller and edge: file of the shared secret that authenticates and encrypts the control channel"},
	{"INGRESS_TRUSTED_PROXIES", "", "comma-separated CIDRs whose X-Forwarded-For is believed"},
	{"INGRESS_NOT_FOUND_PAGE", "", "file (e.g. a Swarm config) answered with 404 for requests no route serves; default a plain-text 404"},
	{"INGRESS_SHUTDOWN_GRACE", "30s", "drain time on SIGTERM"},
	{"INGRESS_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"INGRESS_LOG_FORMAT", "json", "json or console"},
}

// flagName turns INGRESS_HTTP_ADDR into ingress-http-addr.
func flagName(env string) string {
	return strings.ToLower(strings.ReplaceAll(env, "_", "-"))
}

// loadSettings reads every setting from the environment, then lets flags of
// the same name (lower-kebab case) override it. It does not validate.
func loadSettings(name string, args []string, getenv func(string) string, output io.Writer) (map[string]string, []string, error) {
	values := make(map[string]string, len(settings))
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	for _, s := range settings {
		v, ok := lookup(getenv, s.env)
		if !ok {
			v = s.def
		}
		values[s.env] = v
		env := s.env
		fs.Func(flagName(env), fmt.Sprintf("%s (env %s, default %q)", s.usage, env, s.def), func(v string) error {
			values[env] = v
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	return values, fs.Args(), nil
}

// lookup treats a variable set to the empty string as unset, so that
// `INGRESS_X=` in a stack file means "default".
func lookup(getenv func(string) string, key string) (string, bool) {
	v := strings.TrimSpace(getenv(key))
	return v, v != ""
}

// role is the command whose settings are validated: each checks only the
// settings it uses.
type role int

const (
	roleCheck      role = iota // `ingress check`: no listener, no ACME, no directory
	roleServe                  // everything in one process
	roleController             // Docker, ACME and the control channel; no public listener
	roleEdge                   // public listeners fed by the control channel; no Docker, no ACME
)

// parseConfig validates the settings r uses and reports all problems at
// once, each naming the setting and what to do.
func parseConfig(values map[string]string, r role) (Config, error) {
	var errs []error
	bad := func(env, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", env, values[env], fmt.Sprintf(format, a...)))
	}
	c := Config{
		HTTPAddr:      values["INGRESS_HTTP_ADDR"],
		HTTPSAddr:     values["INGRESS_HTTPS_ADDR"],
		AdminAddr:     values["INGRESS_ADMIN_ADDR"],
		Networks:      splitList(values["INGRESS_NETWORK"]),
		RoutesFile:    values["INGRESS_ROUTES_FILE"],
		LabelPrefix:   values["INGRESS_LABEL_PREFIX"],
		ACMEEmail:     values["INGRESS_ACME_EMAIL"],
		ACMECA:        values["INGRESS_ACME_CA"],
		ACMECARoots:   values["INGRESS_ACME_CA_ROOTS"],
		ACMEChallenge: strings.ToLower(values["INGRESS_ACME_CHALLENGE"]),
		DataDir:       values["INGRESS_DATA_DIR"],
		CertsDir:      values["INGRESS_CERTS_DIR"],
		Cache:         values["INGRESS_CACHE"],
		CacheKeyFile:  values["INGRESS_CACHE_KEY_FILE"],
		ControlAddr:   values["INGRESS_CONTROL_ADDR"],
		LogFormat:     values["INGRESS_LOG_FORMAT"],
	}

	if r != roleEdge {
		if c.RoutesFile != "" {
			if fi, err := os.Stat(c.RoutesFile); err != nil {
				bad("INGRESS_ROUTES_FILE", "%v; mount the file (e.g. as a Swarm config) or unset the variable", err)
			} else if fi.IsDir() {
				bad("INGRESS_ROUTES_FILE", "is a directory; name the YAML file itself")
			}
		}
		if err := discovery.CheckLabelPrefix(c.LabelPrefix); err != nil {
			bad("INGRESS_LABEL_PREFIX", "%v", err)
		}
	}
	switch lvl := strings.ToLower(values["INGRESS_LOG_LEVEL"]); lvl {
	case "debug", "info", "warn", "error":
		c.LogLevel, _ = zerolog.ParseLevel(lvl)
	default:
		bad("INGRESS_LOG_LEVEL", "must be debug, info, warn or error")
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		bad("INGRESS_LOG_FORMAT", "must be json or console")
	}
	switch r {
	case roleServe:
		c.checkListeners(values, bad, "INGRESS_HTTP_ADDR", "INGRESS_HTTPS_ADDR", "INGRESS_ADMIN_ADDR")
		c.checkProxy(values, bad)
		errs = append(errs, c.checkACME(bad))
	case roleController:
		c.checkListeners(values, bad, "INGRESS_CONTROL_ADDR", "INGRESS_ADMIN_ADDR")
		c.checkShutdown(values, bad)
		errs = append(errs, c.checkACME(bad))
		errs = append(errs, c.checkSecret(values))
	case roleEdge:
		c.checkListeners(values, bad, "INGRESS_HTTP_ADDR", "INGRESS_HTTPS_ADDR", "INGRESS_ADMIN_ADDR")
		c.checkProxy(values, bad)
		errs = append(errs, c.checkSecret(values))
		c.checkControllers(values, bad)
		errs = append(errs, checkDataDir(c.DataDir))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("invalid settings (nothing was started):\n%w", err)
	}
	return c, nil
}

type badFunc func(env, format string, a ...any)

// checkListeners validates listen addresses, each its own.
func (c *Config) checkListeners(values map[string]string, bad badFunc, envs ...string) {
	addrs := map[string]string{}
	for _, env := range envs {
		if err := checkListenAddr(values[env]); err != nil {
			bad(env, "%v; use host:port, e.g. \":80\" or \"127.0.0.1:8080\"", err)
			continue
		}
		if other, dup := addrs[values[env]]; dup {
			bad(env, "is the same address as %s; give each listener its own port", other)
		}
		addrs[values[env]] = env
	}
}

// checkACME validates the settings of certificate issuance. It returns the
// data directory's problem; the others go through bad.
func (c *Config) checkACME(bad badFunc) error {
	if c.ACMEEmail != "" && !strings.Contains(c.ACMEEmail, "@") {
		bad("INGRESS_ACME_EMAIL", "is not an e-mail address; set a contact like ops@example.com or unset it")
	}
	switch c.Cache {
	case "dir":
	case "swarm":
		if _, err := os.Stat(c.CacheKeyFile); err != nil {
			bad("INGRESS_CACHE_KEY_FILE", "%v; with INGRESS_CACHE=swarm create a key with `openssl rand 32 | docker secret create ingress-cache-key -` and mount the secret", err)
		}
	default:
		bad("INGRESS_CACHE", "must be dir or swarm")
	}
	// The certificate settings are checked by the package that uses them
	// (reading only); whether the data directory is writable, here.
	dataDirOK := true
	for _, e := range leaves(certs.Config{CA: c.ACMECA, CARoots: c.ACMECARoots, DataDir: c.DataDir, CertsDir: c.CertsDir, ChallengeType: c.ACMEChallenge}.Check()) {
		var se *certs.SettingError
		if !errors.As(e, &se) {
			return e // not reached: Check reports only SettingErrors
		}
		bad(certSettings[se.Field], "%v", se.Err)
		dataDirOK = dataDirOK && se.Field != "DataDir"
	}
	if !dataDirOK {
		return nil
	}
	return checkDataDir(c.DataDir)
}

// certSettings names the setting of each certs.Config field Check reports.
var certSettings = map[string]string{
	"CA":            "INGRESS_ACME_CA",
	"CARoots":       "INGRESS_ACME_CA_ROOTS",
	"DataDir":       "INGRESS_DATA_DIR",
	"CertsDir":      "INGRESS_CERTS_DIR",
	"ChallengeType": "INGRESS_ACME_CHALLENGE",
}

// leaves returns the errors an errors.Join holds, or err alone.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// checkProxy validates the settings of the public listeners.
func (c *Config) checkProxy(values map[string]string, bad badFunc) {
	for _, s := range splitList(values["INGRESS_TRUSTED_PROXIES"]) {
		p, err := parsePrefix(s)
		if err != nil {
			bad("INGRESS_TRUSTED_PROXIES", "%q is not a CIDR or IP address; list networks like 10.0.0.0/8,192.0.2.1", s)
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	if page := values["INGRESS_NOT_FOUND_PAGE"]; page != "" {
		if fi, err := os.Stat(page); err != nil {
			bad("INGRESS_NOT_FOUND_PAGE", "%v; mount the page (e.g. as a Swarm config) or unset the variable", err)
		} else if !fi.Mode().IsRegular() || fi.Size() > 1<<20 {
			bad("INGRESS_NOT_FOUND_PAGE", "must name a file of at most 1 MiB")
		}
		c.NotFoundPage = page
	}
	c.checkShutdown(values, bad)
}

func (c *Config) checkShutdown(values map[string]string, bad badFunc) {
	grace, err := time.ParseDuration(values["INGRESS_SHUTDOWN_GRACE"])
	if err != nil || grace < 0 {
		bad("INGRESS_SHUTDOWN_GRACE", "must be a duration like 30s or 2m")
	}
	c.ShutdownGrace = grace
}

// checkSecret loads the control channel's secret; its error names the setting.
func (c *Config) checkSecret(values map[string]string) error {
	s, err := control.LoadSecret(values["INGRESS_CONTROL_SECRET_FILE"], "INGRESS_CONTROL_SECRET_FILE")
	c.ControlSecret = s
	return err
}

// checkDataDir makes sure the ingress can write in dir (the ACME account
// and certificates, an edge's last state): it creates dir and a file there.
func checkDataDir(dir string) error {
	if dir == "" {
		return errors.New("INGRESS_DATA_DIR is empty: set it to a writable directory (ACME account and certificates, an edge's last state)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("INGRESS_DATA_DIR %q: %w (mount a writable volume there)", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("INGRESS_DATA_DIR %q is not writable: %w (mount a writable volume there)", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// checkControllers reads INGRESS_CONTROLLER: a Swarm service name, resolved
// on Swarm's DNS with the port of INGRESS_CONTROL_ADDR, or host:port pairs.
func (c *Config) checkControllers(values map[string]string, bad badFunc) {
	const env = "INGRESS_CONTROLLER"
	list := splitList(values[env])
	const help = "set the controller service's name (e.g. ingress_controller) or host:port addresses"
	switch {
	case len(list) == 0:
		bad(env, "is empty: an edge needs its controllers; %s", help)
	case len(list) == 1 && !strings.Contains(list[0], ":"):
		if !validServiceName(list[0]) {
			bad(env, "%q is not a service name; %s", list[0], help)
			return
		}
		_, port, err := net.SplitHostPort(c.ControlAddr)
		n, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || perr != nil || n == 0 {
			bad("INGRESS_CONTROL_ADDR", "must end in the controllers' port (e.g. \":8443\") when INGRESS_CONTROLLER names a service")
			return
		}
		c.Controllers = control.DNS(nil, list[0], uint16(n))
	default:
		for _, a := range list {
			if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
				bad(env, "%q is not host:port; %s", a, help)
				return
			}
		}
		c.Controllers = control.Static(list...)
	}
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not a host:port address")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("host %q is neither an IP address nor a hostname", host)
	}
	return nil
}

// validServiceName accepts what Docker accepts for a service name (stacks
// add "<stack>_"): letters, digits, '_', '.' and '-', starting with a letter or digit.
func validServiceName(s string) bool {
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '_' && r != '.' && r != '-') {
			return false
		}
	}
	return s != "" && len(s) <= 63
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
