package proxy

import "syscall"

// setRecvBuffer sets the receive buffer of the socket fd.
func setRecvBuffer(fd uintptr, n int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}
