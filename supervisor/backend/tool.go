package backend

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
)

// toolCmd is one run of restic or duplicity.
type toolCmd struct {
	argv     []string
	env      []string
	dir      string
	priority bool
	// warnCodes are exit codes that mean "finished, with warnings"
	// (restic backup's 3): runTool returns a *toolWarning for them.
	warnCodes []int
	// stderr, when set, gets a copy of the tool's stderr lines.
	stderr io.Writer
	// in is the tool's stdin (nil: none).
	in io.Reader
}

// runTool runs a backup tool, copying its stderr to the job log and keeping
// the last lines for the error, which is one line: the tool's own last
// words, not a Python traceback.
func runTool(ctx context.Context, run Runner, sink Sink, c toolCmd) ([]byte, error) {
	tail := &lineTail{max: 12}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	name := c.argv[0]
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		log := sink.LogWriter()
		for sc.Scan() {
			l := sc.Text()
			fmt.Fprintf(log, "%s: %s\n", name, l)
			if c.stderr != nil {
				fmt.Fprintln(c.stderr, l)
			}
			tail.add(l)
		}
		_, _ = io.Copy(io.Discard, pr)
		close(done)
	}()
	out, err := run.Run(ctx, chroot.Cmd{Argv: c.argv, Dir: c.dir, Env: c.env, In: c.in, Stderr: pw, Priority: c.priority})
	pw.Close()
	<-done
	sub := name
	if v := subcommand(c.argv); v != "" {
		sub = name + " " + v
	}
	if err == nil {
		return out, nil
	}
	if code := execx.ExitCode(err); ctx.Err() == nil && slices.Contains(c.warnCodes, code) {
		sink.Logf("%s finished with warnings: %s", sub, tail.String())
		return out, &toolWarning{cmd: sub, code: code, tail: tail.String()}
	}
	return out, toolError(ctx, sub, err, tail.String())
}

// toolError is the error of a tool run that failed (err, not one of its
// "finished, with warnings" exits): stopped by the job's context (the time
// limit), or its exit status with its last words (tail), for every backend.
func toolError(ctx context.Context, name string, err error, tail string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s stopped: %w", name, context.Cause(ctx))
	}
	if tail != "" {
		return fmt.Errorf("%s: exit status %d: %s", name, execx.ExitCode(err), tail)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// toolWarning is a tool's "finished, with warnings" exit: its output is
// complete, its archive written, but not everything is in it.
type toolWarning struct {
	cmd  string
	code int
	tail string
}

func (w *toolWarning) Error() string {
	return fmt.Sprintf("%s finished with warnings (exit status %d): %s", w.cmd, w.code, w.tail)
}

// lineFunc is an io.Writer that hands each write (runTool writes a line
// at a time) to a function.
type lineFunc func(line string)

func (f lineFunc) Write(p []byte) (int, error) {
	f(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// subcommand is the first argv word after the options that is not an
// option value: good enough to name "restic backup" in errors.
func subcommand(argv []string) string {
	known := map[string]bool{"backup": true, "restore": true, "init": true, "forget": true, "check": true, "snapshots": true,
		"cat": true, "full": true, "incremental": true, "verify": true, "collection-status": true, "cleanup": true,
		"remove-older-than": true, "remove-all-but-n-full": true, "remove-all-inc-of-but-n-full": true, "unlock": true}
	for _, a := range argv[1:] {
		if known[a] {
			return a
		}
	}
	return ""
}

// lineTail keeps the last stderr lines; String distils them (Reason).
type lineTail struct {
	mu        sync.Mutex
	max       int
	lines     []string
	traceback bool // inside a Python traceback's indented frames
}

func (t *lineTail) add(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if strings.HasPrefix(l, "Traceback (most recent call last)") {
		t.traceback = true
		return
	}
	if t.traceback && strings.HasPrefix(l, " ") {
		return // a frame or its source line
	}
	t.traceback = false
	if cleanLine(l) == "" {
		return
	}
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		t.lines = t.lines[1:]
	}
}

func (t *lineTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Reason(t.lines)
}

// mkdirs creates directories (paths inside root) for a tool.
func mkdirs(root string, dirs ...string) {
	for _, d := range dirs {
		_ = os.MkdirAll(filepath.Join(root, d), 0o700)
	}
}
