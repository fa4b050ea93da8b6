package main

import (
	"io"
	"time"

	"github.com/rs/zerolog"
)

// Log field names shared by the commands.
const (
	fieldAddr     = "addr"
	fieldListener = "listener"
	fieldVersion  = "version"
)

// newLogger returns the process logger: JSON lines, or a console writer for humans.
func newLogger(c Config, out io.Writer) zerolog.Logger {
	if c.LogFormat == "console" {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.RFC3339}
	}
	return zerolog.New(out).Level(c.LogLevel).With().Timestamp().Logger()
}
