// Package hooks runs a client's snapshot hooks (pre_snapshot, on_snapshot,
// post_snapshot) through a small Runner: inside the guest over the QEMU
// guest agent, over ssh, or on the host for lvm_host clients. Sequence puts
// them in order around the snapshot, with an optional filesystem freeze, and
// measures the pause window the guest's applications see.
package hooks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Hook names, as in the client configuration.
const (
	PreSnapshot  = "pre_snapshot"
	OnSnapshot   = "on_snapshot"
	PostSnapshot = "post_snapshot"
	// Recovery hooks (in-place restore).
	PreRecovery  = "pre_recovery"
	EndRecovery  = "end_recovery" // runs in the appliance, chrooted into the restored tree
	PostRecovery = "post_recovery"
)

// maxOutput is how much of a hook's stdout and stderr is kept (the tail).
// A hook's output is the guest's to choose: everything before the tail is
// counted (Result.StdoutDropped) and dropped as it arrives.
const maxOutput = 16 << 10

// Hook is one command to run through /bin/sh -c.
type Hook struct {
	Name    string // PreSnapshot, …
	Command string
	Env     map[string]string
	Timeout time.Duration
}

// Result is what one hook run did.
type Result struct {
	Name    string        `json:"name"`
	Command string        `json:"command"`
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Exit    int           `json:"exit"`             // -1 when it did not exit normally
	Stdout  string        `json:"stdout,omitempty"` // the last maxOutput bytes
	Stderr  string        `json:"stderr,omitempty"`
	// StdoutDropped and StderrDropped count the bytes before the kept tails.
	StdoutDropped int64  `json:"stdout_dropped,omitempty"`
	StderrDropped int64  `json:"stderr_dropped,omitempty"`
	TimedOut      bool   `json:"timed_out,omitempty"`
	Error         string `json:"error,omitempty"` // the transport's error, or why it did not finish
}

// OK says whether the hook exited 0 in time.
func (r Result) OK() bool { return r.Error == "" && !r.TimedOut && r.Exit == 0 }

// Err describes a failed run, nil when OK.
func (r Result) Err() error {
	switch {
	case r.OK():
		return nil
	case r.TimedOut:
		return fmt.Errorf("hook %s: still running after %s: abandoned", r.Name, r.Elapsed.Round(time.Millisecond))
	case r.Error != "":
		return fmt.Errorf("hook %s: %s", r.Name, r.Error)
	default:
		msg := fmt.Sprintf("hook %s: exit code %d", r.Name, r.Exit)
		if s := lastLine(r.Stderr); s != "" {
			msg += ": " + s
		}
		return fmt.Errorf("%s", msg)
	}
}

// Runner runs one hook to its end or its time limit. Failures of the hook
// and of the transport both come back in the Result.
type Runner interface {
	Run(ctx context.Context, h Hook) Result
}

// envList renders env as sorted NAME=value pairs with a PATH, since the
// guest agent replaces the whole environment.
func envList(env map[string]string) []string {
	out := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	keys := make([]string, 0, len(env))
	for k := range env {
		if k != "PATH" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// tailBuffer is an io.Writer that keeps the last max bytes written to it
// and counts the rest, in at most 2*max bytes of memory whatever is written.
type tailBuffer struct {
	max     int
	buf     []byte
	dropped int64
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max, buf: make([]byte, 0, 2*max)} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	if len(p) >= t.max {
		// Only p's own tail survives.
		t.dropped += int64(len(t.buf) + len(p) - t.max)
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return len(p), nil
	}
	if len(t.buf)+len(p) > cap(t.buf) {
		// Then more than max bytes are held: slide the last max to the
		// front (each byte is moved at most once per max bytes written).
		over := len(t.buf) - t.max
		t.dropped += int64(over)
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return len(p), nil
}

// String returns the kept tail.
func (t *tailBuffer) String() string {
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return string(b)
}

// Dropped counts the bytes written before the kept tail.
func (t *tailBuffer) Dropped() int64 {
	if over := len(t.buf) - t.max; over > 0 {
		return t.dropped + int64(over)
	}
	return t.dropped
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
