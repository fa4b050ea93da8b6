// Package proxy serves the route table: it brings each request's path to
// one canonical form and matches it to a route, applies the route's policy
// and forwards it over IPv4-only transports, flushing streams as they
// arrive.
//
// # One request, one walk
//
// Handler.ServeHTTP (handler.go) is the walk and nothing else: it calls
// each stage in turn, and each stage lives in files named for it. Read them
// in this order to follow a request:
//
//  1. Accept (server.go). Listen opens the listeners with TCP keep-alive;
//     NewServer sets the server's limits (header timeout and size, idle
//     timeout). ServeHTTP starts an exchange (accesslog.go), the request's
//     bookkeeping and ResponseWriter, with the client's address and whether
//     it is a trusted proxy (forwarded.go) and its request ID
//     (requestid.go).
//  2. Match (match.go). The path is made canonical (path.go) and matched
//     in the current table; a host and path that several services share
//     picks its member by weight (weighted.go, sticky.go). state.go holds
//     what was prepared for each route when the table was set (routeState:
//     transport, upstreams, ReverseProxy, metric handles). No route, a
//     blocked route or a bad path is answered here.
//  3. Policy (policy.go). Redirects and rewrites (rewrite.go), the HTTPS
//     redirect, the allow list, the access steps in the order access.go
//     lists (limit.go, auth.go, authfile.go, forwardauth.go, maintenance
//     in errorpage.go) and max_body. explain.go describes the same steps
//     as data (Stages, with rewrite_explain.go), for `ingress explain`.
//  4. Outbound (outbound.go). compress.go wraps the response writer when
//     the route compresses. forward bounds the client's body (bounds.go)
//     and sends the request either on the direct path (direct.go: plain
//     requests to scheme=http upstreams, without httputil.ReverseProxy) or
//     through the route's ReverseProxy, whose Rewrite sets the forwarding
//     headers (forwarded.go); both finish the outbound request in
//     reqheaders.go (upstream path, request ID, header edits) and end in
//     roundTrip (outbound.go), the one retry policy. balance.go picks the
//     upstream (slowstart.go ramps a new one; health.go ejects failing
//     ones, healthcheck.go probes them); for scheme=http, hedge.go races a
//     slow new connection against one to the next upstream, through
//     internal/h1's Conn (a connection taken before its request is
//     written: Pooled, Dial, then SendOn or Release). transport.go holds
//     the shared transports and their dialer (usertimeout_linux.go, with
//     usertimeout_other.go elsewhere), and internal/h1 speaks HTTP/1.1 to
//     scheme=http upstreams (it never retries by itself).
//  5. Response (respond.go). modifyResponse applies the route's response
//     headers and tracks streams (SSE, WebSocket, stream=true; the
//     registry is stream.go) so that shutdown can end them; on the direct
//     path respond.go copies the body, with a flush per write for streams,
//     and an HTTP/1.1 stream may leave net/http instead (hijack.go). Every
//     upstream failure goes through proxyError (errors.go), which picks the
//     status and counts the error; a route's error pages replace the body
//     (errorpage.go).
//  6. Record (accesslog.go, metrics.go). When the handler returns (or a
//     hijacked stream ends) finish releases the upstream, observes the
//     request's metrics and writes the access log line.
//
// Time bounds that span stages (client body, client writes, upstream
// pauses) are in bounds.go. Shutdown and Close (server.go) end the walk for
// everyone: Shutdown drains the servers and ends open streams at the grace
// deadline; Close stops the background work (pool sweepers, health checks).
//
// A new feature goes to the stage where it acts: a check on the request to
// policy.go or access.go (and a Stage in explain.go), a choice of upstream
// to balance.go, a change to the outbound request to reqheaders.go or
// outbound.go, a change to the response to respond.go or errors.go.
package proxy
