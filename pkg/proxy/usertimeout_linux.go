//go:build linux

package proxy

import (
	"errors"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// userTimeout returns the Control function of the upstream dialer: it sets
// TCP_USER_TIMEOUT to d (at least 1 s), so that data the upstream has not
// acknowledged within d ends the connection. A request written to a task
// that vanished (its node cut off, its traffic blackholed) then fails
// within d, and an idempotent one is retried on another task, instead of
// waiting out minutes of retransmissions. A peer that is alive acknowledges
// within milliseconds, even while it does not read (a zero window is
// acknowledged too). d is upstreamUserTimeout (transport.go).
func userTimeout(d time.Duration) func(network, address string, c syscall.RawConn) error {
	ms := int(max(d, time.Second) / time.Millisecond)
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms)
		})
		return errors.Join(err, serr)
	}
}
