package discovery

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/http/httpguts"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// The value parsers of the label keys. Each returns an error that says what
// the value must look like; the caller adds the label's name.

const headersPart = "headers."

// knownKeys is listed in unknown-key errors.
const knownKeys = "host, path, port, strip_prefix, tls, redirect, upstream, network, scheme, stream, timeout, connect_timeout, client_body_timeout, client_write_timeout, upstream_idle_timeout, max_body, auth.basic, allow, allow_encoded_slashes, headers.<Name>, priority, limit.rate, limit.burst, limit.conn, auth.basic_file, auth.forward, auth.forward.headers, error_page.<code>, maintenance, eject.after, eject.for, health.path, health.interval, health.timeout, health.status, health.port, weight, sticky, slow_start, " + rewriteKeys

// errUnknownKey marks the error of a key the parser does not know.
var errUnknownKey = errors.New("unknown key")

var networkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// applyLabel parses one key's value into s.
func applyLabel(s *Spec, key string, lv labelValue) error {
	if lv.dupOf != "" {
		return fmt.Errorf("sets the same key as %s; keep only one of them", lv.dupOf)
	}
	v := strings.TrimSpace(lv.value)
	r := &s.Route
	var err error
	switch key {
	case "host":
		r.Hosts, err = parseHosts(v)
	case "path":
		r.Path, err = parsePath(v)
	case "port":
		r.Port, err = parsePort(v)
	case "strip_prefix":
		r.StripPrefix, err = parseBool(v)
	case "tls":
		r.TLS, err = oneOf(v, route.TLSAuto, route.TLSOff)
	case "redirect":
		r.Redirect, err = parseBool(v)
	case "upstream":
		var m string
		m, err = oneOf(v, string(route.ModeVIP), string(route.ModeTasks))
		s.Upstream = route.Mode(m)
	case "network":
		if !networkName.MatchString(v) {
			err = fmt.Errorf("%q is not a Docker network name (letters, digits, '_', '.', '-')", v)
		}
		s.Network = v
	case "scheme":
		r.Scheme, err = oneOf(v, route.SchemeHTTP, route.SchemeHTTPS, route.SchemeH2C)
	case "stream":
		r.Stream, err = parseBool(v)
	case "timeout":
		r.Timeout, err = parseTimeout(v)
	case "connect_timeout":
		r.ConnectTimeout, err = parseTimeout(v)
	case "client_body_timeout":
		r.ClientBodyTimeout, err = parseTimeout(v)
	case "client_write_timeout":
		r.ClientWriteTimeout, err = parseTimeout(v)
	case "upstream_idle_timeout":
		r.UpstreamIdleTimeout, err = parseTimeout(v)
	case "max_body":
		r.MaxBody, err = parseSize(v)
	case "auth.basic":
		r.BasicAuth, err = parseBasicAuth(v)
	case "allow":
		r.Allow, err = parseAllow(v)
	case "allow_encoded_slashes":
		r.AllowEncodedSlashes, err = parseBool(v)
	case "priority":
		r.Priority, err = strconv.Atoi(v)
		if err != nil {
			err = fmt.Errorf("%q is not a whole number (e.g. 10 or -1)", v)
		}
	default:
		if ok, err := applyAccessLabel(r, key, v); ok {
			return err
		}
		if ok, err := applyHealthLabel(r, key, v); ok {
			return err
		}
		if ok, err := applySplitLabel(r, key, v); ok {
			return err
		}
		if handled, err := applyRewriteLabel(s, key, v); handled {
			return err
		}
		name, ok := strings.CutPrefix(key, headersPart)
		if !ok {
			return fmt.Errorf("%w %q (known keys: %s)", errUnknownKey, key, knownKeys)
		}
		var h route.Header
		h, err = parseHeader(name, v)
		r.Headers = append(r.Headers, h)
	}
	return err
}

func oneOf(v string, allowed ...string) (string, error) {
	if slices.Contains(allowed, v) {
		return v, nil
	}
	return "", fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", v)
	}
	return b, nil
}

func parsePort(v string) (uint16, error) {
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number from 1 to 65535", v)
	}
	return uint16(n), nil
}

func parseTimeout(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive Go duration (e.g. 30s, 2m, 1m30s)", v)
	}
	return d, nil
}

// parseHosts parses a comma-separated host list: lower-cased, trailing dot
// removed, sorted, duplicates and empty items dropped.
func parseHosts(v string) ([]string, error) {
	var hosts []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		h, err := parseHost(item)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return nil, errors.New("no host given: list one or more hostnames, e.g. example.com,www.example.com")
	}
	slices.Sort(hosts)
	return slices.Compact(hosts), nil
}

// parseHost validates one hostname, or a wildcard "*.<domain>" that matches
// one label, where <domain> has at least two labels.
func parseHost(h string) (string, error) {
	for i := range len(h) {
		if h[i] >= 0x80 {
			return "", fmt.Errorf("host %q is not ASCII: write an international name in its xn-- (punycode) form", h)
		}
	}
	if strings.Contains(h, "://") || strings.Contains(h, "/") {
		return "", fmt.Errorf("host %q must be a bare hostname, without scheme or path (use the path key for paths)", h)
	}
	if strings.Contains(h, ":") {
		return "", fmt.Errorf("host %q must not include a port (the port key is the service's port)", h)
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	name, wild := strings.CutPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return "", fmt.Errorf("host %q: a wildcard must be the whole first label, e.g. *.example.com", h)
	}
	if wild && !strings.Contains(name, ".") {
		return "", fmt.Errorf("host %q: a wildcard needs a domain of at least two labels, e.g. *.example.com", h)
	}
	if len(name) > 253 {
		return "", fmt.Errorf("host %q is longer than 253 characters", h)
	}
	for label := range strings.SplitSeq(name, ".") {
		if err := checkHostLabel(label); err != nil {
			return "", fmt.Errorf("host %q: %w", h, err)
		}
	}
	return h, nil
}

func checkHostLabel(l string) error {
	if l == "" || len(l) > 63 {
		return errors.New("each dot-separated part must be 1 to 63 characters")
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("part %q must not start or end with '-'", l)
	}
	for i := range len(l) {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("character %q is not allowed (letters, digits and '-' only)", c)
		}
	}
	return nil
}

// parsePath validates a path prefix: it starts with "/", holds no ".." at
// all, no empty or "." segment, no query or fragment, and loses one trailing
// slash.
func parsePath(v string) (string, error) {
	if !strings.HasPrefix(v, "/") {
		return "", fmt.Errorf("path %q must start with /, e.g. /api", v)
	}
	if strings.Contains(v, "..") {
		return "", fmt.Errorf("path %q must not hold ..", v)
	}
	if strings.ContainsAny(v, "?#") {
		return "", fmt.Errorf("path %q must not hold a query (?) or fragment (#)", v)
	}
	if v == "/" {
		return v, nil
	}
	p := strings.TrimSuffix(v, "/")
	for seg := range strings.SplitSeq(p[1:], "/") {
		switch seg {
		case "":
			return "", fmt.Errorf("path %q has an empty segment (//)", v)
		case ".":
			return "", fmt.Errorf("path %q must not hold a . segment", v)
		}
		for i := range len(seg) {
			if !pathChar(seg[i]) {
				return "", fmt.Errorf("path %q: character %q is not allowed (letters, digits and -._~!$&'()*+,;=:@ only; write the path decoded, without %%XX)", v, seg[i])
			}
		}
	}
	return p, nil
}

func pathChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}

// sizeUnits: SI units are powers of 1000 (MB = 10^6 bytes), IEC units powers
// of 1024 (MiB = 2^20 bytes). Units are case-insensitive; no unit is bytes.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// parseSize parses a body size: a whole number, optionally followed by a unit
// (B, KB, MB, GB, TB = powers of 1000; KiB, MiB, GiB, TiB = powers of 1024).
func parseSize(v string) (int64, error) {
	bad := fmt.Errorf("%q is not a size: a whole number of bytes, or with a unit: 10MB (10^6 bytes), 512KiB (2^10 bytes), also B, KB, GB, TB, MiB, GiB, TiB", v)
	i := 0
	for i < len(v) && '0' <= v[i] && v[i] <= '9' {
		i++
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(v[i:]))]
	if i == 0 || !ok {
		return 0, bad
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", v)
	}
	if n == 0 {
		return 0, fmt.Errorf("%q: the size must be more than 0 (leave max_body out for no limit)", v)
	}
	return n * mult, nil
}

// parseBasicAuth parses "user:bcrypt-hash[,user:hash…]". Hashes are never
// quoted in errors.
func parseBasicAuth(v string) ([]route.BasicUser, error) {
	var users []route.BasicUser
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		user, hash, ok := strings.Cut(item, ":")
		user, hash = strings.TrimSpace(user), strings.TrimSpace(hash)
		if !ok || user == "" || hash == "" {
			return nil, errors.New("each entry must read user:bcrypt-hash (e.g. from `htpasswd -nbB user password`)")
		}
		if slices.ContainsFunc(users, func(u route.BasicUser) bool { return u.User == user }) {
			return nil, fmt.Errorf("user %q is listed twice", user)
		}
		if !validBcrypt(hash) {
			return nil, fmt.Errorf("the hash of user %q is not a bcrypt hash ($2a$, $2b$ or $2y$, a cost, then 53 characters; make one with `htpasswd -nbB user password`; in a compose file write each $ as $$)", user)
		}
		users = append(users, route.BasicUser{User: user, Hash: []byte(hash)})
	}
	if len(users) == 0 {
		return nil, errors.New("no user given: write user:bcrypt-hash[,user:hash…]")
	}
	slices.SortFunc(users, func(a, b route.BasicUser) int { return strings.Compare(a.User, b.User) })
	return users, nil
}

// validBcrypt reports whether bcrypt can use hash: the length and alphabet
// of a full hash, and bcrypt.Cost accepting its version and cost.
func validBcrypt(hash string) bool {
	if len(hash) != 60 {
		return false
	}
	for i := 7; i < len(hash); i++ {
		c := hash[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '/') {
			return false
		}
	}
	_, err := bcrypt.Cost([]byte(hash))
	return err == nil
}

// parseAllow parses comma-separated CIDRs or bare addresses (a single host:
// /32 or /128), masked, sorted, duplicates dropped.
func parseAllow(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := parseAllowItem(item)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("no network given: list CIDRs or addresses, e.g. 10.0.0.0/8,192.0.2.7")
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out), nil
}

func parseAllowItem(item string) (netip.Prefix, error) {
	bad := fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8) or an IP address", item)
	if strings.Contains(item, "/") {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return netip.Prefix{}, bad
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(item)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, bad
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// hopHeaders may not be set by a route: they describe the connection, not
// the response.
var hopHeaders = []string{"Connection", "Content-Length", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func parseHeader(name, value string) (route.Header, error) {
	if name == "" {
		return route.Header{}, errors.New("no header name: write headers.<Name>, e.g. headers.X-Frame-Options")
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return route.Header{}, fmt.Errorf("%q is not a valid header name", name)
	}
	name = textproto.CanonicalMIMEHeaderKey(name)
	if slices.Contains(hopHeaders, name) {
		return route.Header{}, fmt.Errorf("header %s describes the connection and cannot be set by a route", name)
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		return route.Header{}, fmt.Errorf("the value of header %s holds a line break or control character", name)
	}
	return route.Header{Name: name, Value: value}, nil
}
