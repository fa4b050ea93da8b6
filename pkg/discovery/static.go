package discovery

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The static routes file (Config.RoutesFile), for services outside Swarm:
//
//	services:
//	  - name: legacy
//	    upstreams: ["192.0.2.10:8080", "backend.lan:8080"]
//	    labels:
//	      ingress.host: legacy.example.com
//
// ParseRoutesFile reads it strictly; ResolveStatic turns its upstreams into
// IPv4 addresses; Build turns the result into routes with the label parser.

// StaticEntry is one service of the routes file, as written.
type StaticEntry struct {
	Name      string
	Upstreams []string          // "IPv4:port" or "name:port"
	Labels    map[string]string // scalar values as written ("8080", "true")
	Line      int               // line of the entry in the file
}

// maxRoutesFile bounds the size of a routes file.
const maxRoutesFile = 1 << 20

var (
	staticName   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	upstreamHost = regexp.MustCompile(`^[a-zA-Z0-9_]([a-zA-Z0-9_-]*[a-zA-Z0-9_])?(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]*[a-zA-Z0-9_])?)*\.?$`)
)

// EntryError is a problem with one service of the routes file. The file's
// other services are still good.
type EntryError struct {
	Name string // the service's name, "" when it has no valid (or a repeated) name
	Line int    // line of the service in the file
	Err  error  // every problem of the service, one per line
}

func (e *EntryError) Error() string { return e.Err.Error() }
func (e *EntryError) Unwrap() error { return e.Err }

// ParseRoutesFile parses a routes file. It is strict: unknown fields,
// duplicate keys or names, missing fields and malformed upstreams are errors,
// each with its line; all of them are returned at once. A problem with the
// file as a whole (not YAML, not the expected shape) returns no entries; a
// problem confined to some services returns the good services and, joined,
// one *EntryError per bad one, so that one bad service never takes the
// others down. An empty file holds no services. It is pure: names are
// resolved later, by ResolveStatic.
func ParseRoutesFile(r io.Reader) ([]StaticEntry, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxRoutesFile+1))
	if err != nil {
		return nil, fmt.Errorf("read routes file: %w", err)
	}
	if len(data) > maxRoutesFile {
		return nil, fmt.Errorf("routes file is larger than %d bytes", maxRoutesFile)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("routes file is not valid YAML: %w", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("line %d: routes file must hold one YAML document", more.Line)
	}
	p := &fileParser{names: map[string]int{}}
	entries := p.file(&doc)
	if len(p.errs) > 0 {
		return nil, errors.Join(append(p.errs, p.bad...)...)
	}
	if len(p.bad) > 0 {
		return entries, errors.Join(p.bad...)
	}
	return entries, nil
}

type fileParser struct {
	errs  []error        // problems of the file as a whole
	bad   []error        // one *EntryError per bad service
	names map[string]int // service name -> line
}

func (p *fileParser) fail(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...)))
}

// yamlDeref follows aliases (*anchor) to the node they name.
func yamlDeref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// fields walks a mapping node, calling f for each key, rejecting unknown and
// duplicate keys.
func (p *fileParser) fields(n *yaml.Node, what string, known []string, f func(key string, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.fail(n, "%s must be a mapping with keys %s", what, strings.Join(known, ", "))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := yamlDeref(n.Content[i]), yamlDeref(n.Content[i+1])
		switch {
		case k.Kind != yaml.ScalarNode || !slices.Contains(known, k.Value):
			p.fail(k, "unknown field %q in %s (known: %s)", k.Value, what, strings.Join(known, ", "))
		case seen[k.Value]:
			p.fail(k, "field %q is set twice in %s", k.Value, what)
		default:
			seen[k.Value] = true
			f(k.Value, v)
		}
	}
}

func (p *fileParser) file(doc *yaml.Node) []StaticEntry {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = yamlDeref(root.Content[0])
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // a document of comments only
	}
	var entries []StaticEntry
	p.fields(root, "the routes file", []string{"services"}, func(_ string, v *yaml.Node) {
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			return
		}
		if v.Kind != yaml.SequenceNode {
			p.fail(v, "services must be a list")
			return
		}
		for _, item := range v.Content {
			if e, ok := p.entry(yamlDeref(item)); ok {
				entries = append(entries, e)
			}
		}
	})
	return entries
}

func (p *fileParser) entry(n *yaml.Node) (StaticEntry, bool) {
	e := StaticEntry{Line: n.Line}
	before := len(p.errs)
	p.fields(n, "a service", []string{"name", "upstreams", "labels"}, func(key string, v *yaml.Node) {
		switch key {
		case "name":
			e.Name = p.name(v)
		case "upstreams":
			e.Upstreams = p.upstreams(v)
		case "labels":
			e.Labels = p.labels(v)
		}
	})
	if n.Kind == yaml.MappingNode {
		p.required(n, &e, before)
	}
	if len(p.errs) == before {
		return e, true
	}
	p.bad = append(p.bad, &EntryError{Name: e.Name, Line: n.Line, Err: errors.Join(p.errs[before:]...)})
	p.errs = p.errs[:before]
	return e, false
}

// required reports the missing fields of a service that is otherwise good.
func (p *fileParser) required(n *yaml.Node, e *StaticEntry, before int) {
	if e.Name == "" && len(p.errs) == before {
		p.fail(n, "a service needs a name")
	}
	if len(e.Upstreams) == 0 && len(p.errs) == before {
		p.fail(n, "service %q needs upstreams, e.g. upstreams: [\"192.0.2.10:8080\"]", e.Name)
	}
	if len(e.Labels) == 0 && len(p.errs) == before {
		p.fail(n, "service %q needs labels, e.g. labels: {ingress.host: legacy.example.com}", e.Name)
	}
}

func (p *fileParser) name(v *yaml.Node) string {
	if v.Kind != yaml.ScalarNode || !staticName.MatchString(v.Value) {
		p.fail(v, "name must be letters, digits, '_', '.' or '-', starting with a letter or digit")
		return ""
	}
	if line, ok := p.names[v.Value]; ok {
		p.fail(v, "service name %q is already used on line %d", v.Value, line)
		return ""
	}
	p.names[v.Value] = v.Line
	return v.Value
}

func (p *fileParser) upstreams(v *yaml.Node) []string {
	if v.Kind != yaml.SequenceNode {
		p.fail(v, "upstreams must be a list of \"host:port\"")
		return nil
	}
	var out []string
	for _, item := range v.Content {
		item = yamlDeref(item)
		if item.Kind != yaml.ScalarNode {
			p.fail(item, "an upstream must be a \"host:port\" string")
			continue
		}
		if err := checkUpstream(item.Value); err != nil {
			p.fail(item, "%s", err)
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

// checkUpstream checks the form of "IPv4:port" or "name:port".
func checkUpstream(u string) error {
	if strings.Contains(u, "/") {
		return fmt.Errorf("upstream %q must read host:port, without scheme or path, e.g. 192.0.2.10:8080", u)
	}
	if strings.Count(u, ":") > 1 {
		return fmt.Errorf("upstream %q looks like an IPv6 address: upstreams are IPv4 only; use an IPv4 address or a name with an A record", u)
	}
	host, port, err := net.SplitHostPort(u)
	if err != nil {
		return fmt.Errorf("upstream %q must read host:port, e.g. 192.0.2.10:8080", u)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("upstream %q: port must be a number from 1 to 65535", u)
	}
	if !upstreamHost.MatchString(host) || len(host) > 253 {
		return fmt.Errorf("upstream %q: %q is neither an IPv4 address nor a hostname", u, host)
	}
	return nil
}

func (p *fileParser) labels(v *yaml.Node) map[string]string {
	if v.Kind != yaml.MappingNode {
		p.fail(v, "labels must be a mapping of label: value")
		return nil
	}
	out := make(map[string]string, len(v.Content)/2)
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := yamlDeref(v.Content[i]), yamlDeref(v.Content[i+1])
		switch {
		case k.Kind != yaml.ScalarNode || k.Value == "" || k.Value == "<<":
			p.fail(k, "a label must be a plain key (merge keys << are not supported)")
		case val.Kind != yaml.ScalarNode:
			p.fail(val, "the value of label %q must be a single value, not a list or mapping", k.Value)
		default:
			if _, dup := out[k.Value]; dup {
				p.fail(k, "label %q is set twice", k.Value)
				continue
			}
			if val.Tag == "!!null" {
				out[k.Value] = ""
			} else {
				out[k.Value] = val.Value
			}
		}
	}
	return out
}
