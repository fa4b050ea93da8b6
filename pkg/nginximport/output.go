package nginximport

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/discovery"
)

// Prefix is the label prefix written: the default one, which discovery
// reads (docs/labels.md).
const Prefix = discovery.DefaultLabelPrefix

// routeNames names the routes of a service: none for a single route (the
// top-level keys), else from their paths ("root" for /), with the first
// label of the host in front when two routes share a path.
func routeNames(s *Service) []string {
	if len(s.Routes) == 1 {
		return []string{""}
	}
	names := make([]string, len(s.Routes))
	count := map[string]int{}
	for i, r := range s.Routes {
		names[i] = pathName(r.Get("path"))
		count[names[i]]++
	}
	used := map[string]bool{}
	for i, r := range s.Routes {
		if count[names[i]] > 1 {
			h, _, _ := strings.Cut(strings.TrimPrefix(strings.Split(r.Get("host"), ",")[0], "*."), ".")
			names[i] = sanitize(h) + "-" + names[i]
		}
		base := names[i]
		for n := 2; used[names[i]] || names[i] == "default"; n++ {
			names[i] = base + "-" + strconv.Itoa(n)
		}
		used[names[i]] = true
	}
	return names
}

func pathName(p string) string {
	if p == "" || p == "/" {
		return "root"
	}
	if n := sanitize(p); n != "" {
		return n
	}
	return "path"
}

// keyFor is the full label of key for a route named name ("" = top level).
func keyFor(name, key string) string {
	if name == "" {
		return Prefix + key
	}
	return Prefix + "routes." + name + "." + key
}

// Labels returns a service's labels as the stack file gets them (values
// without compose's $ escaping), in output order.
func Labels(s *Service) []Label {
	var out []Label
	for i, name := range routeNames(s) {
		for _, l := range s.Routes[i].Labels {
			out = append(out, Label{keyFor(name, l.Key), l.Value})
		}
	}
	return out
}

// yamlString quotes a value for YAML; stack escapes $ as $$ for compose.
func yamlString(v string, stack bool) string {
	if stack {
		v = strings.ReplaceAll(v, "$", "$$")
	}
	return strconv.Quote(v)
}

// WriteStack writes the result as a stack file fragment: per Swarm
// service its deploy.labels; static upstreams and the notes as comments.
func WriteStack(w io.Writer, r *Result) {
	fmt.Fprintln(w, "# Labels for the Swarm services (deploy.labels in the stack file; in a stack file every $ is written $$).")
	if len(r.Services) > 0 {
		fmt.Fprintln(w, "services:")
	}
	for _, s := range r.Services {
		fmt.Fprintf(w, "  # %s\n", s.Why)
		fmt.Fprintf(w, "  %s:\n    deploy:\n      labels:\n", s.Name)
		for _, l := range Labels(s) {
			fmt.Fprintf(w, "        %s: %s\n", l.Key, yamlString(l.Value, true))
		}
	}
	if len(r.Static) > 0 {
		fmt.Fprintln(w, "#")
		fmt.Fprintln(w, "# Upstreams outside Swarm: entries of the routes file (INGRESS_ROUTES_FILE):")
		var b strings.Builder
		writeRoutes(&b, r.Static)
		for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
			fmt.Fprintln(w, "#   "+line)
		}
	}
	writeNotes(w, r)
}

// WriteRoutesFile writes every service as an entry of the routes file.
func WriteRoutesFile(w io.Writer, r *Result) {
	fmt.Fprintln(w, "# Routes file (INGRESS_ROUTES_FILE). Swarm services are reached by name on the ingress's network;")
	fmt.Fprintln(w, "# a loopback address is the ingress's own container unless it runs with the host's network.")
	all := append(append([]*Service{}, r.Services...), r.Static...)
	writeRoutes(w, all)
	writeNotes(w, r)
}

func writeRoutes(w io.Writer, ss []*Service) {
	fmt.Fprintln(w, "services:")
	for _, s := range ss {
		// One entry per port: the routes file's upstreams carry it.
		type entry struct {
			ups []string
			idx []int
		}
		var order []string
		entries := map[string]*entry{}
		for i, r := range s.Routes {
			k := "static"
			var ups []string
			if s.Upstreams != nil {
				ups = s.Upstreams
			} else {
				port := r.Get("port")
				if port == "" {
					port = "80"
				}
				k = port
				host := s.Name
				if strings.Contains(s.Why, "loopback") {
					host = "127.0.0.1"
				}
				ups = []string{host + ":" + port}
			}
			e, ok := entries[k]
			if !ok {
				e = &entry{ups: ups}
				entries[k] = e
				order = append(order, k)
			}
			e.idx = append(e.idx, i)
		}
		for _, k := range order {
			e := entries[k]
			name := s.Name
			if len(order) > 1 {
				name += "-" + k
			}
			sub := &Service{Name: name}
			for _, i := range e.idx {
				sub.Routes = append(sub.Routes, s.Routes[i])
			}
			fmt.Fprintf(w, "  # %s\n", s.Why)
			fmt.Fprintf(w, "  - name: %s\n", name)
			q := make([]string, len(e.ups))
			for i, u := range e.ups {
				q[i] = strconv.Quote(u)
			}
			fmt.Fprintf(w, "    upstreams: [%s]\n", strings.Join(q, ", "))
			fmt.Fprintln(w, "    labels:")
			for _, l := range Labels(sub) {
				if strings.HasSuffix(l.Key, ".port") {
					continue
				}
				fmt.Fprintf(w, "      %s: %s\n", l.Key, yamlString(l.Value, false))
			}
		}
	}
}

func writeNotes(w io.Writer, r *Result) {
	sections := []struct {
		title string
		notes []Note
	}{
		{"Carried over with a difference", r.Changed},
		{"Not needed with the ingress", r.Unneeded},
		{"NOT carried over (import-nginx exits 1 unless --allow-partial)", r.Dropped},
	}
	for _, s := range sections {
		if len(s.notes) == 0 {
			continue
		}
		fmt.Fprintf(w, "#\n# %s (%d):\n", s.title, len(s.notes))
		for _, n := range s.notes {
			fmt.Fprintf(w, "#   %s: %s\n#       %s\n", n.Pos, oneLine(n.Directive), n.Reason)
		}
	}
}

func oneLine(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
}
