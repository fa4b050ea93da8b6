//go:build !(linux || darwin)

package h1

import "net"

// socketFD returns -1: there is no non-blocking peek here, so a pooled
// connection the upstream closed is found when a request fails on it
// (ErrStaleConn).
func socketFD(net.Conn) int { return -1 }

func peekIdle(int) bool { return true }
