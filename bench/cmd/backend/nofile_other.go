//go:build !unix

package main

// raiseNoFile does nothing: there is no open-files limit to lift here.
func raiseNoFile() error { return nil }
