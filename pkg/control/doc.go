// Package control is the channel between the two roles of a split
// deployment: controllers, which read Docker and obtain
// certificates, send edges, which serve traffic without Docker, the route
// table, the certificates (private key and chain per host) and the pending
// ACME challenge answers. It knows them as data, never Docker. The
// operator's view of the roles and the channel is docs/roles.md.
//
// # Security
//
// Both sides mount one secret (Secret). From it HKDF-SHA256 (salt "swarm-ingress
// control v1") derives an ed25519 certificate authority key (info "ed25519
// certificate authority") and the AES-256-GCM key of the edge's state file
// (info "aes-256-gcm edge state file"). Every process makes its own
// short-lived P-256 leaf certificate signed by that authority; the channel is
// TLS 1.3 from crypto/tls, and both sides require and verify the peer's leaf
// against the authority. Only public keys and signatures cross the wire,
// inside TLS. A peer with another secret or none fails the handshake, and
// both sides log which setting to fix. Every holder of the secret can act as
// either side: the secret is the cluster's trust boundary.
//
// # Protocol
//
// An edge connects to every controller its Locator returns (tasks.<service>
// on Swarm's DNS), so the loss of one changes nothing it serves and a
// challenge reaches it whichever controller orders the certificate. Frames
// are length-prefixed JSON (wire.go). The edge says hello; the controller
// sends its whole state, then each change, and an empty update when idle so
// that a silent peer is noticed; the edge acknowledges each update after it
// applied it. A controller lets autocert proceed with a challenge only once
// every connected edge acknowledged it (with none connected, the first edge to
// connect), or a timeout passed (logged with the edges that did not confirm).
//
// # Versions
//
// A table's version is the wall-clock time, in Unix nanoseconds, at which the
// controller started the Docker read it was built from (route.Table.UpdatedAt
// as discovery sets it); a controller never sends a version lower than or
// equal to one it already sent. An edge applies a table only when its version
// is strictly higher than the one it holds, from whichever controller. Every
// controller's Docker read is answered from the Swarm leader's store, so a
// read that starts later sees a state at least as new: a controller that
// lags (its last read is older) carries an older version and cannot roll an
// edge back, and when it catches up its table has the same content. The rule
// assumes the managers' clocks agree to within the interval between two
// reads (NTP does far better); a clock ahead only makes an edge keep a table
// until a newer read supersedes it. A partial table (a controller that has not
// read Docker yet serves the routes file only) never replaces a complete one,
// whatever its version. Certificates are ordered by their
// NotBefore: an edge keeps the newest of each host and drops those of hosts
// its table no longer routes with tls=auto. Challenges belong to the
// controller that sent them and leave with its connection.
//
// # Persistence
//
// An edge writes the table and certificates it holds to its state file after
// each change, sealed with AES-256-GCM (persist.go), and loads it at start,
// so an edge restarted while every controller is down still serves. A file
// that does not authenticate (damaged, or from another secret) is reported
// and ignored.
package control
