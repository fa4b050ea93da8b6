package control

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// readFrame never panics and never accepts a frame larger than maxFrame.
func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	writeFrame(&buf, &update{Seq: 1, Full: true, Table: NewTable(testTable(time.Unix(1, 0), "a.example.test"), 1)})
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var u update
		if readFrame(bytes.NewReader(data), &u) == nil && u.Table != nil {
			u.Table.Build()
		}
	})
}

// readState accepts only what writeState wrote with the same secret.
func FuzzReadState(f *testing.F) {
	sec, err := NewSecret([]byte("one secret for the whole cluster"), testSetting)
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	good := filepath.Join(dir, "good")
	if err := writeState(good, sec, savedState{Saved: time.Unix(1, 0), Table: NewTable(testTable(time.Unix(1, 0), "a.example.test"), 1)}); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(stateMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "state")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		readState(p, sec)
	})
}

// parsePEM never panics.
func FuzzParsePEM(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parsePEM(data)
	})
}
