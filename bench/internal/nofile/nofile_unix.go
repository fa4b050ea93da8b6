//go:build unix

// Package nofile lifts the open-files limit of the benchmark commands, which
// hold thousands of connections.
package nofile

import (
	"fmt"
	"syscall"
)

// Raise lifts the soft open-files limit to the hard limit.
func Raise() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("set RLIMIT_NOFILE: %w", err)
	}
	return nil
}
