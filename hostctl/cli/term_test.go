package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// openPTY opens a pseudo-terminal: the operator's side (master) and the
// terminal hostctl reads (slave).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testutil.SkipOrFail(t, fmt.Sprintf("no pseudo-terminals here: %v", err))
	}
	require.NoError(t, unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// Only a terminal is one: not a buffer, a file or a pipe.
func TestIsTerminal(t *testing.T) {
	_, slave := openPTY(t)
	require.True(t, isTerminal(slave))
	fd, ok := terminalFd(slave)
	require.True(t, ok)
	require.Equal(t, int(slave.Fd()), fd)

	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	for name, s := range map[string]any{"buffer": &bytes.Buffer{}, "file": f, "pipe": w, "nil": nil} {
		require.False(t, isTerminal(s), name)
		_, ok := terminalFd(s)
		require.False(t, ok, name)
	}
	_, err = readSecretLine(r, &bytes.Buffer{})
	require.ErrorIs(t, err, errNoTerminal, "a secret is never read from a pipe")
}

// rawTerminal changes a terminal's mode and restores it; anything else is
// left alone.
func TestRawTerminal(t *testing.T) {
	_, slave := openPTY(t)
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	require.NoError(t, err)
	require.NotZero(t, before.Lflag&unix.ECHO)
	restore := rawTerminal(slave)
	raw, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	require.NoError(t, err)
	require.Zero(t, raw.Lflag&(unix.ECHO|unix.ICANON), "raw: no echo, no line editing")
	restore()
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	require.NoError(t, err)
	require.Equal(t, before.Lflag, after.Lflag)

	rawTerminal(&bytes.Buffer{})() // no terminal: nothing to do
}

// A password is read from the terminal without echo, one line.
func TestReadSecretLine(t *testing.T) {
	master, slave := openPTY(t)
	_, err := master.WriteString("s3cret\nrest\n")
	require.NoError(t, err)
	var echo bytes.Buffer
	pw, err := readSecretLine(slave, &echo)
	require.NoError(t, err)
	require.Equal(t, "s3cret", pw)
	require.Equal(t, "\n", echo.String())
}
