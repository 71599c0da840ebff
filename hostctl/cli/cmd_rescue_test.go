package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeConsole echoes what is written to it and closes after "exit\n".
type fakeConsole struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func newFakeConsole() *fakeConsole {
	r, w := io.Pipe()
	return &fakeConsole{r: r, w: w}
}

func (f *fakeConsole) Read(p []byte) (int, error) { return f.r.Read(p) }

func (f *fakeConsole) Write(p []byte) (int, error) {
	go func(s string) {
		f.w.Write([]byte("echo: " + s))
		if strings.Contains(s, "exit\n") {
			f.w.Close()
		}
	}(string(p))
	return len(p), nil
}

func TestPumpConsoleEndsWhenConsoleCloses(t *testing.T) {
	var out bytes.Buffer
	err := pumpConsole(strings.NewReader("exit\n"), &out, newFakeConsole())
	require.NoError(t, err)
	require.Contains(t, out.String(), "echo: exit")
}

func TestPumpConsoleEscape(t *testing.T) {
	var out bytes.Buffer
	err := pumpConsole(strings.NewReader("ls\x1dmore"), &out, newFakeConsole())
	require.ErrorIs(t, err, errForcedOff)
}
