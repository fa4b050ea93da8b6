//go:build !unix

// Package nofile lifts the open-files limit of the benchmark commands, which
// hold thousands of connections.
package nofile

// Raise does nothing: there is no open-files limit to lift here.
func Raise() error { return nil }
