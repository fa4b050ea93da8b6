package nginximport

import (
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
)

// What the ingress does instead of a directive that needs no label.
const (
	whyStreams   = "the ingress writes text/event-stream responses, WebSockets and other upgrades to the client as they arrive, with no buffering and no idle timeout while the stream lives; for another type that must be flushed per write (e.g. NDJSON) set ingress.stream=true"
	whyUpgrade   = "the ingress passes WebSocket and other Upgrade requests through by itself, over HTTP/1.1 to the upstream"
	whyKeepalive = "the ingress keeps its own HTTP/1.1 keep-alive pools to upstreams"
	whyTLS       = "the ingress serves HTTPS with ACME certificates (or user-supplied ones in INGRESS_CERTS_DIR), TLS 1.2 minimum with its own modern suites and session handling"
	whyLogs      = "the ingress writes one JSON access log line per request to stdout (route, status, duration, bytes, upstream, request_id)"
	whyProcess   = "a setting of the Nginx process or its file serving; the ingress has its own (INGRESS_* settings)"
	whyForwarded = "the ingress always sets X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host, and forwards the client's Host"
	whyRedirect  = "Nginx rewrites Location headers from its upstream name; the ingress forwards the client's Host, so the upstream's redirects already name it"
	whyFiles     = "serving files from disk: the ingress only proxies; serve the files from a service (e.g. an nginx:alpine image with the files) and route to it"
	whyCache     = "response caching is not part of the ingress"
)

// explained are directives with a fixed verdict wherever they appear.
var explained = map[string]struct {
	dropped bool
	reason  string
}{
	"proxy_buffering":               {false, whyStreams},
	"proxy_request_buffering":       {false, "the ingress streams request bodies to the upstream as they arrive"},
	"chunked_transfer_encoding":     {false, whyStreams},
	"proxy_cache":                   {false, "no response cache: the ingress never caches (with proxy_cache off nothing changes)"},
	"proxy_http_version":            {false, whyUpgrade + "; " + whyKeepalive},
	"proxy_redirect":                {false, whyRedirect},
	"proxy_next_upstream":           {false, "the ingress retries a connection that failed before anything was sent (on another task with upstream=tasks), and replays only idempotent requests"},
	"proxy_intercept_errors":        {false, "error pages apply to the ingress's own 502/503/504 answers (ingress.error_page.<code>)"},
	"keepalive_timeout":             {false, "client keep-alive is bounded by the ingress itself"},
	"keepalive_requests":            {false, "client keep-alive is bounded by the ingress itself"},
	"keepalive":                     {false, whyKeepalive},
	"client_header_timeout":         {false, "the ingress bounds the time to read a request's headers itself"},
	"client_body_buffer_size":       {false, "the ingress streams request bodies; nothing is buffered to disk"},
	"client_header_buffer_size":     {false, "the ingress bounds header sizes itself"},
	"large_client_header_buffers":   {false, "the ingress bounds header sizes itself"},
	"proxy_buffer_size":             {false, "buffer sizes are the ingress's own"},
	"proxy_buffers":                 {false, "buffer sizes are the ingress's own"},
	"proxy_busy_buffers_size":       {false, "buffer sizes are the ingress's own"},
	"proxy_max_temp_file_size":      {false, "the ingress never buffers responses to disk"},
	"proxy_temp_path":               {false, "the ingress never buffers responses to disk"},
	"proxy_ssl_server_name":         {false, "with ingress.scheme=https the ingress sends the upstream's name as SNI"},
	"proxy_ssl_verify":              {true, "the ingress's checks of an https upstream's certificate are not configured per route"},
	"access_log":                    {false, whyLogs},
	"error_log":                     {false, "the ingress logs errors as JSON to stdout (INGRESS_LOG_LEVEL)"},
	"log_format":                    {false, whyLogs},
	"sendfile":                      {false, whyProcess},
	"tcp_nopush":                    {false, whyProcess},
	"tcp_nodelay":                   {false, whyProcess},
	"types_hash_max_size":           {false, whyProcess},
	"server_names_hash_bucket_size": {false, whyProcess},
	"server_tokens":                 {false, "the ingress does not announce a version"},
	"default_type":                  {false, "the upstream sets Content-Type"},
	"types":                         {false, "MIME types matter for serving files; the upstream sets Content-Type"},
	"charset":                       {false, "the upstream sets the charset"},
	"resolver":                      {false, "the ingress reaches services by their IPv4 addresses from Swarm; it resolves no names per request"},
	"resolver_timeout":              {false, "the ingress resolves no names per request"},
	"http2":                         {false, "the ingress speaks HTTP/2 to clients over TLS"},
	"http3":                         {true, "the ingress does not serve HTTP/3"},
	"internal":                      {false, "the location is not a route of its own (it is what an auth_request or error_page points at)"},
	"real_ip_header":                {false, "the client address comes from X-Forwarded-For of INGRESS_TRUSTED_PROXIES only"},
	"set_real_ip_from":              {false, "the client address comes from X-Forwarded-For of INGRESS_TRUSTED_PROXIES only: list these networks there"},
	"real_ip_recursive":             {false, "the client address is the right-most X-Forwarded-For entry that is not a trusted proxy"},
	"proxy_pass_request_body":       {false, "the forward-auth sub-request carries no body"},
	"proxy_pass_request_headers":    {false, "the ingress forwards the request headers"},
	"gzip_vary":                     {false, "the ingress sets Vary: Accept-Encoding on every response it may compress"},
	"gzip_comp_level":               {false, "the ingress picks its compression levels (fast ones, for proxying)"},
	"gzip_proxied":                  {false, "the ingress compresses by type and size whatever proxies the request went through"},
	"gzip_buffers":                  {false, "the ingress compresses as the response streams, without buffering it whole"},
	"gzip_http_version":             {false, "the ingress compresses for any HTTP version"},
	"gzip_disable":                  {false, "the ingress compresses by Accept-Encoding only"},
	"ssl_certificate":               {false, whyTLS},
	"ssl_certificate_key":           {false, whyTLS},
	"ssl_trusted_certificate":       {false, whyTLS},
	"ssl_dhparam":                   {false, whyTLS},
	"ssl_protocols":                 {false, whyTLS},
	"ssl_ciphers":                   {false, whyTLS},
	"ssl_ecdh_curve":                {false, whyTLS},
	"ssl_prefer_server_ciphers":     {false, whyTLS},
	"ssl_session_cache":             {false, whyTLS},
	"ssl_session_timeout":           {false, whyTLS},
	"ssl_session_tickets":           {false, whyTLS},
	"ssl_stapling":                  {false, whyTLS},
	"ssl_stapling_verify":           {false, whyTLS},
	"ssl_buffer_size":               {false, whyTLS},
	"index":                         {true, whyFiles},
	"root":                          {true, whyFiles},
	"alias":                         {true, whyFiles},
	"try_files":                     {true, whyFiles},
	"autoindex":                     {true, whyFiles},
	"expires":                       {true, "cache lifetimes: set Cache-Control in the application, or ingress.headers.Cache-Control on a route"},
	"etag":                          {true, whyFiles},
	"open_file_cache":               {false, whyProcess},
	"proxy_cache_path":              {true, whyCache},
	"proxy_cache_valid":             {true, whyCache},
	"proxy_cache_key":               {true, whyCache},
	"proxy_cache_bypass":            {true, whyCache},
	"proxy_cache_use_stale":         {true, whyCache},
	"proxy_cache_lock":              {true, whyCache},
	"proxy_no_cache":                {true, whyCache},
	"fastcgi_pass":                  {true, "FastCGI is not spoken by the ingress: put an HTTP server (e.g. nginx or caddy with php-fpm) in front of the application"},
	"uwsgi_pass":                    {true, "uwsgi is not spoken by the ingress: serve the application over HTTP"},
	"sub_filter":                    {true, "the ingress does not rewrite response bodies"},
	"sub_filter_once":               {true, "the ingress does not rewrite response bodies"},
	"set":                           {true, "variables are not supported"},
	"geo":                           {true, "variables are not supported; for address lists use ingress.allow"},
	"split_clients":                 {true, "variables are not supported; to split traffic between services use ingress.weight"},
	"limit_rate":                    {true, "bandwidth limits are not supported (ingress.limit.rate limits requests per second)"},
	"limit_req_log_level":           {false, "the access log names every answer the ingress gives itself"},
	"limit_conn_log_level":          {false, "the access log names every answer the ingress gives itself"},
	"limit_req_dry_run":             {true, "limits are enforced or not set"},
	"gzip_static":                   {true, whyFiles},
	"brotli":                        {true, "the ingress compresses with gzip or zstd (ingress.compress)"},
	"satisfy":                       {true, "every check of a route must pass (allow, then auth): there is no `satisfy any`"},
	"proxy_send_timeout":            {false, "the ingress writes the request to the upstream as the client sends it; a stalled client is bounded by ingress.client_body_timeout"},
	"ssl_verify_client":             {true, "client certificates are not checked by the ingress"},
	"ssl_client_certificate":        {true, "client certificates are not checked by the ingress"},
	"proxy_ssl_certificate":         {true, "the ingress presents no client certificate to upstreams"},
	"proxy_ssl_certificate_key":     {true, "the ingress presents no client certificate to upstreams"},
	"grpc_set_header":               {true, "gRPC header edits: use ingress.request_headers.<Name>"},
	"proxy_cookie_path":             {true, "cookie attributes are not rewritten"},
	"proxy_cookie_domain":           {true, "cookie attributes are not rewritten"},
	"proxy_ignore_headers":          {false, whyStreams},
	"more_set_headers":              {true, "headers-more module: use ingress.headers.<Name>"},
	"more_clear_headers":            {true, "headers-more module: use ingress.response_headers_remove"},
}

// serverOnly are directives a redirect-only server may hold besides its
// redirect (value: why they do not matter there).
var serverOnly = map[string]string{
	"listen": "-", "server_name": "-", "http2": "-", "access_log": "-", "error_log": "-", "server_tokens": "-",
	"add_header": "-", "include": "-", "keepalive_timeout": "-",
}

// structural are handled where they occur.
var structural = map[string]bool{
	"server": true, "location": true, "upstream": true, "limit_req_zone": true, "limit_conn_zone": true,
	"map": true, "proxy_pass": true, "grpc_pass": true, "return": true, "rewrite": true, "if": true,
	"listen": true, "server_name": true, "http": true, "include": true,
}

// level notes a directive that is neither structural nor inherited: a
// fixed verdict, or not recognised.
func (t *translator) level(d *nginxconf.Directive) {
	if _, ok := inherited[d.Name]; ok && d.Name != "root" {
		return // noted where a route uses it
	}
	if structural[d.Name] {
		return
	}
	if mainOnly[d.Name] {
		t.topLevel(d)
		return
	}
	e, ok := explained[d.Name]
	switch {
	case d.Name == "root":
		t.done(d) // noted with the location that serves files, or used by an error_page
	case ok && e.dropped:
		t.drop(d, "%s", e.reason)
	case ok:
		t.unneeded(d, "%s", e.reason)
	case strings.HasPrefix(d.Name, "ssl_") || strings.HasPrefix(d.Name, "proxy_ssl_"):
		t.unneeded(d, "%s", whyTLS)
	case strings.HasPrefix(d.Name, "gzip_"):
		t.unneeded(d, "the ingress's compression is set with ingress.compress, compress.types and compress.min_size only")
	default:
		t.drop(d, "not recognised by the importer")
	}
}
