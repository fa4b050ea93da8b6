package nginximport

import (
	"maps"

	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
)

// inherited are the directives a location takes from its server and the
// http block when it does not set them itself. As in Nginx, a level that
// sets one replaces the whole list of the outer levels (add_header at
// location level drops the server's add_header lines). allow and deny are
// one list ("access").
var inherited = map[string]string{
	"add_header": "add_header", "proxy_set_header": "proxy_set_header", "proxy_hide_header": "proxy_hide_header",
	"gzip": "gzip", "gzip_types": "gzip_types", "gzip_min_length": "gzip_min_length",
	"limit_req": "limit_req", "limit_conn": "limit_conn", "limit_req_status": "limit_req_status", "limit_conn_status": "limit_conn_status",
	"auth_basic": "auth_basic", "auth_basic_user_file": "auth_basic_user_file",
	"auth_request": "auth_request", "auth_request_set": "auth_request_set",
	"allow": "access", "deny": "access",
	"client_max_body_size":  "client_max_body_size",
	"proxy_read_timeout":    "proxy_read_timeout",
	"proxy_connect_timeout": "proxy_connect_timeout",
	"client_body_timeout":   "client_body_timeout",
	"send_timeout":          "send_timeout",
	"error_page":            "error_page",
	"root":                  "root",
}

// scope is what applies at one level: for each inherited name, the
// directives of the innermost level that sets it.
type scope struct {
	set map[string][]*nginxconf.Directive
}

func (t *translator) newScope(parent *scope, ds []*nginxconf.Directive, _ string) *scope {
	s := &scope{set: map[string][]*nginxconf.Directive{}}
	if parent != nil {
		maps.Copy(s.set, parent.set)
	}
	own := map[string][]*nginxconf.Directive{}
	for _, d := range ds {
		if k, ok := inherited[d.Name]; ok {
			own[k] = append(own[k], d)
		}
	}
	maps.Copy(s.set, own)
	return s
}

// all returns the directives in effect for name.
func (s *scope) all(name string) []*nginxconf.Directive { return s.set[name] }

// last returns the directive in effect for a single-valued name, or nil.
func (s *scope) last(name string) *nginxconf.Directive {
	l := s.set[name]
	if len(l) == 0 {
		return nil
	}
	return l[len(l)-1]
}

// argsFrom returns the arguments from index i on (none when there are fewer).
func argsFrom(d *nginxconf.Directive, i int) []string {
	if i >= len(d.Args) {
		return nil
	}
	return d.Args[i:]
}

func lastArg(d *nginxconf.Directive) string {
	if len(d.Args) == 0 {
		return ""
	}
	return d.Args[len(d.Args)-1]
}

func allButLast(d *nginxconf.Directive) []string {
	if len(d.Args) == 0 {
		return nil
	}
	return d.Args[:len(d.Args)-1]
}
