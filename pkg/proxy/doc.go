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
//     it is a trusted proxy (forwarded.go).
//  2. Match (match.go). The path is made canonical (path.go) and matched
//     in the current table; state.go holds what was prepared for each
//     route when the table was set (routeState: transport, upstreams,
//     ReverseProxy, metric handles). No route, a blocked route or a bad
//     path is answered here.
//  3. Policy (policy.go). The HTTPS redirect, the allow list, the access
//     steps (access.go: limits, authentication, maintenance; auth.go for
//     auth.basic) and max_body, in the order access.go lists.
//  4. Outbound (outbound.go). forward bounds the client's body
//     (bounds.go) and sends the request either on the direct path
//     (direct.go: plain requests to scheme=http upstreams, without
//     httputil.ReverseProxy) or through the route's ReverseProxy, whose
//     Rewrite sets the forwarding headers (forwarded.go). Both end in
//     roundTrip (outbound.go), the one retry policy: balance.go picks the
//     upstream, transport.go holds the shared transports, and
//     internal/h1 speaks HTTP/1.1 to scheme=http upstreams (it never
//     retries by itself).
//  5. Response (stream.go, hijack.go, errors.go). modifyResponse (stream.go)
//     applies the route's response headers and tracks streams (SSE,
//     WebSocket, stream=true) so that shutdown can end them; on the direct
//     path an HTTP/1.1 stream may leave net/http (hijack.go), and the body
//     is copied with a flush per write for streams (direct.go). Every
//     upstream failure goes through proxyError (errors.go), which picks the
//     status and counts the error.
//  6. Record (accesslog.go, metrics.go). When the handler returns (or a
//     hijacked stream ends) finish releases the upstream, observes the
//     request's metrics and writes the access log line.
//
// Time bounds that span stages (client body, client writes, upstream
// pauses) are in bounds.go. Shutdown and Close (server.go) end the walk for
// everyone: Shutdown drains the servers and ends open streams at the grace
// deadline; Close stops the transports' background work.
//
// A new feature goes to the stage where it acts: a check on the request to
// policy.go or access.go, a choice of upstream to balance.go, a change to
// the outbound request to forwarded.go or outbound.go, a change to the
// response to stream.go or errors.go.
package proxy
