//go:build unix

package swarmtest

import (
	"errors"
	"syscall"
)

// FileGroup returns the group that owns path (the Docker socket: a
// container that talks to Docker runs with it).
func FileGroup(path string) (uint32, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Gid, nil
}

// alive reports whether pid names a live process.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
