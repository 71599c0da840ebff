package cli

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/term"
)

// hostctl's one check for a terminal. Its streams are *os.File when it
// runs as a program and buffers or pipes in tests, which are never
// terminals; what is one decides whether recover may ask, whether target
// setup reads a password without echo, whether rescue puts the console
// into raw mode and which progress form run prints.

// fdStream is a stream with a file descriptor (an *os.File).
type fdStream interface {
	SyscallConn() (syscall.RawConn, error)
}

// isTerminal says whether s (a reader or writer hostctl was given) is a
// terminal. It looks through SyscallConn, not Fd: Fd would switch the
// file to blocking mode as a side effect.
func isTerminal(s any) bool {
	f, ok := s.(fdStream)
	if !ok {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	if rc.Control(func(fd uintptr) { tty = term.IsTerminal(int(fd)) }) != nil {
		return false
	}
	return tty
}

// terminalFd is the file descriptor of s when s is a terminal, for the
// calls that change its mode (raw input, no echo).
func terminalFd(s any) (int, bool) {
	f, ok := s.(interface{ Fd() uintptr })
	if !ok || !isTerminal(s) {
		return -1, false
	}
	return int(f.Fd()), true
}

// rawTerminal puts s into raw mode when it is a terminal and returns what
// restores it (a no-op when s is none or the mode could not be changed).
func rawTerminal(s any) (restore func()) {
	fd, ok := terminalFd(s)
	if !ok {
		return func() {}
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return func() {}
	}
	return func() { _ = term.Restore(fd, state) }
}

// errNoTerminal: a secret is read only from a terminal.
var errNoTerminal = errors.New("not a terminal")

// readSecretLine reads one line from the terminal s without echoing it;
// echo shows the newline the operator typed.
func readSecretLine(s any, echo io.Writer) (string, error) {
	fd, ok := terminalFd(s)
	if !ok {
		return "", errNoTerminal
	}
	b, err := term.ReadPassword(fd)
	io.WriteString(echo, "\n")
	return string(b), err
}
