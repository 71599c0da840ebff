// Package execx is the one way both binaries run external commands: argv
// slices (never "sh -c" unless running an operator's hook), LC_ALL=C so
// output can be parsed, and errors that carry argv and the tail of stderr.
package execx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// stderrTail is how much of a failing command's stderr goes into its error.
const stderrTail = 2048

// Error is a command that failed to start or exited non-zero.
type Error struct {
	Argv   []string
	Stderr string // the last stderrTail bytes
	Err    error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Argv, " "), e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ExitCode returns the command's exit code, or -1 when it did not exit normally.
func (e *Error) ExitCode() int {
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// ExitCode is the exit code of the command whose *Error err is or wraps;
// -1 when err is no such error or the command did not exit normally (it
// did not start, or a signal ended it).
func ExitCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.ExitCode()
	}
	return -1
}

// Cmd describes one command run.
type Cmd struct {
	Argv []string
	Dir  string
	Env  []string  // added to the inherited environment after LC_ALL=C
	In   io.Reader // stdin; nil means /dev/null
	// Stdout and Stderr, when set, receive the output as it comes in
	// (stderr is still captured for the error).
	Stdout io.Writer
	Stderr io.Writer
	// Setup may adjust the exec.Cmd (SysProcAttr: chroot, process group, …).
	Setup func(*exec.Cmd)
}

// Run runs c and returns its stdout (when c.Stdout is nil).
func Run(ctx context.Context, c Cmd) ([]byte, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("execx: empty argv")
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), c.Env...)
	cmd.Stdin = c.In
	var out bytes.Buffer
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	} else {
		cmd.Stdout = &out
	}
	tail := &tailBuffer{max: stderrTail}
	if c.Stderr != nil {
		cmd.Stderr = io.MultiWriter(c.Stderr, tail)
	} else {
		cmd.Stderr = tail
	}
	if c.Setup != nil {
		c.Setup(cmd)
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return out.Bytes(), &Error{Argv: c.Argv, Stderr: tail.String(), Err: err}
	}
	return out.Bytes(), nil
}

// Output runs argv and returns its stdout.
func Output(ctx context.Context, argv ...string) ([]byte, error) {
	return Run(ctx, Cmd{Argv: argv})
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
