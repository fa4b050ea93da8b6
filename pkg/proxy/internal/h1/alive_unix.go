//go:build linux || darwin

package h1

import (
	"errors"
	"net"
	"syscall"
)

// socketFD returns the descriptor of nc's socket, or -1.
func socketFD(nc net.Conn) int {
	fd := -1
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(s uintptr) { fd = int(s) })
		}
	}
	return fd
}

// peekIdle reports whether the socket has nothing to read, without
// blocking. The descriptor is used outside RawConn.Control to save two
// allocations per request: it is valid because only the connection's owner
// calls alive, and never after Close.
func peekIdle(fd int) bool {
	var buf [1]byte
	_, _, err := syscall.Recvfrom(fd, buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return errors.Is(err, syscall.EAGAIN) // nothing to read; anything else is EOF, data or an error
}
