package hooks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Agent sends one QEMU guest agent command to a domain (virt.Hypervisor
// has it).
type Agent interface {
	QemuAgentCommand(ctx context.Context, domain, cmd string) (string, error)
}

// AgentRunner runs hooks in a guest with guest-exec and polls
// guest-exec-status until the hook exits or its time limit passes.
type AgentRunner struct {
	Agent  Agent
	Domain string
	// Poll is the first polling interval (it grows to 500ms); 0 = 50ms.
	Poll time.Duration
}

var _ Runner = (*AgentRunner)(nil)

// execStatus is guest-exec-status's reply.
type execStatus struct {
	Exited   bool   `json:"exited"`
	ExitCode *int   `json:"exitcode"`
	Signal   *int   `json:"signal"`
	OutData  string `json:"out-data"`
	ErrData  string `json:"err-data"`
}

// ExecCommand is the guest-exec request for h: /bin/sh -c, captured output,
// the whole environment given.
func ExecCommand(h Hook) string {
	b, _ := json.Marshal(map[string]any{
		"execute": "guest-exec",
		"arguments": map[string]any{
			"path":           "/bin/sh",
			"arg":            []string{"-c", h.Command},
			"env":            envList(h.Env),
			"capture-output": true,
		},
	})
	return string(b)
}

// StatusCommand is the guest-exec-status request for pid.
func StatusCommand(pid int) string {
	return fmt.Sprintf(`{"execute":"guest-exec-status","arguments":{"pid":%d}}`, pid)
}

// parsePID reads guest-exec's reply.
func parsePID(reply string) (int, error) {
	var r struct {
		Return struct {
			PID *int `json:"pid"`
		} `json:"return"`
	}
	if err := json.Unmarshal([]byte(reply), &r); err != nil || r.Return.PID == nil {
		return 0, fmt.Errorf("guest-exec: unexpected reply %q", reply)
	}
	return *r.Return.PID, nil
}

// ParseStatus reads guest-exec-status's reply into done, exit code and
// the tails of the decoded output (see parseStatus).
func ParseStatus(reply string) (done bool, exit int, stdout, stderr []byte, err error) {
	done, exit, o, e, err := parseStatus(reply)
	return done, exit, o.data, e.data, err
}

// output is the kept tail of one output stream and the count of the bytes
// before it.
type output struct {
	data    []byte
	dropped int64
}

// parseStatus reads guest-exec-status's reply. The agent returns all the
// output it captured at once, base64 in the JSON reply (the guest agent
// caps it, libvirt caps the reply); only its last maxOutput bytes are
// decoded.
func parseStatus(reply string) (done bool, exit int, stdout, stderr output, err error) {
	var r struct {
		Return *execStatus `json:"return"`
	}
	if err := json.Unmarshal([]byte(reply), &r); err != nil || r.Return == nil {
		return false, 0, output{}, output{}, fmt.Errorf("guest-exec-status: unexpected reply %.200q", reply)
	}
	s := r.Return
	if !s.Exited {
		return false, 0, output{}, output{}, nil
	}
	exit = -1
	if s.ExitCode != nil {
		exit = *s.ExitCode
	}
	if s.Signal != nil {
		exit = -1
	}
	if stdout.data, stdout.dropped, err = decodeTail(s.OutData, maxOutput); err != nil {
		return true, exit, output{}, output{}, fmt.Errorf("guest-exec-status: out-data: %w", err)
	}
	if stderr.data, stderr.dropped, err = decodeTail(s.ErrData, maxOutput); err != nil {
		return true, exit, output{}, output{}, fmt.Errorf("guest-exec-status: err-data: %w", err)
	}
	return true, exit, stdout, stderr, nil
}

// decodeTail decodes the last max bytes of standard base64 b64, and says
// how many bytes come before them. Base64 is decoded in quanta of 4
// characters (3 bytes), so the tail is cut on a quantum boundary.
func decodeTail(b64 string, max int) ([]byte, int64, error) {
	if len(b64)%4 != 0 {
		return nil, 0, fmt.Errorf("base64 of %d characters: not a multiple of 4", len(b64))
	}
	start := 0
	if quanta := (max + 2) / 3; len(b64)/4 > quanta+1 {
		start = len(b64) - 4*(quanta+1)
	}
	data, err := base64.StdEncoding.DecodeString(b64[start:])
	if err != nil {
		return nil, 0, err
	}
	dropped := int64(start / 4 * 3)
	if len(data) > max {
		dropped += int64(len(data) - max)
		data = data[len(data)-max:]
	}
	return data, dropped, nil
}

// Run runs h; res is named so that the deferred Elapsed lands in what is
// returned.
func (a *AgentRunner) Run(ctx context.Context, h Hook) (res Result) {
	res = Result{Name: h.Name, Command: h.Command, Started: time.Now(), Exit: -1}
	defer func() { res.Elapsed = time.Since(res.Started) }()
	reply, err := a.Agent.QemuAgentCommand(ctx, a.Domain, ExecCommand(h))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	pid, err := parsePID(reply)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	deadline := time.Now().Add(h.Timeout)
	poll := a.Poll
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	for {
		reply, err := a.Agent.QemuAgentCommand(ctx, a.Domain, StatusCommand(pid))
		if err != nil {
			res.Error = err.Error()
			return res
		}
		done, exit, out, errb, err := parseStatus(reply)
		if err != nil {
			res.Error = err.Error()
			return res
		}
		if done {
			res.Exit, res.Stdout, res.Stderr = exit, string(out.data), string(errb.data)
			res.StdoutDropped, res.StderrDropped = out.dropped, errb.dropped
			return res
		}
		if h.Timeout > 0 && time.Now().After(deadline) {
			res.TimedOut = true
			a.kill(ctx, pid)
			return res
		}
		select {
		case <-ctx.Done():
			res.Error = context.Cause(ctx).Error()
			a.kill(context.WithoutCancel(ctx), pid)
			return res
		case <-time.After(poll):
		}
		if poll < 500*time.Millisecond {
			poll *= 2
		}
	}
}

// killWait bounds how long kill waits for its killer to finish.
const killWait = 15 * time.Second

// kill ends a hung hook's shell and its children, best effort: the guest
// agent has no kill command of its own, so it is one more guest-exec. It
// waits (bounded) until the killer has exited, so that the hook is gone
// when the Result says it was killed, however slow the guest is.
func (a *AgentRunner) kill(ctx context.Context, pid int) {
	k := Hook{Command: fmt.Sprintf("pkill -KILL -P %d; kill -KILL %d", pid, pid)}
	if reply, err := a.Agent.QemuAgentCommand(ctx, a.Domain, ExecCommand(k)); err == nil {
		if kp, err := parsePID(reply); err == nil {
			// Reaping the killer's status also makes the agent forget it.
			for deadline := time.Now().Add(killWait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				reply, err := a.Agent.QemuAgentCommand(ctx, a.Domain, StatusCommand(kp))
				if err != nil {
					break
				}
				if done, _, _, _, err := ParseStatus(reply); err != nil || done {
					break
				}
			}
		}
	}
	// Collect the killed hook's status too.
	_, _ = a.Agent.QemuAgentCommand(ctx, a.Domain, StatusCommand(pid))
}
