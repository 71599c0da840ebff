package hooks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExecCommand(t *testing.T) {
	got := ExecCommand(Hook{Command: `echo "a b" >&2`, Env: map[string]string{"SB_HOOK": "pre_snapshot", "B": "2"}})
	require.JSONEq(t, `{"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c","echo \"a b\" >&2"],
		"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","B=2","SB_HOOK=pre_snapshot"],"capture-output":true}}`, got)
	require.JSONEq(t, `{"execute":"guest-exec-status","arguments":{"pid":42}}`, StatusCommand(42))
}

func TestParseStatus(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		reply    string
		done     bool
		exit     int
		out, err string
		bad      bool
	}{
		{reply: `{"return":{"exited":false}}`},
		{reply: fmt.Sprintf(`{"return":{"exited":true,"exitcode":0,"out-data":%q}}`, b64([]byte("hi\n"))), done: true, out: "hi\n"},
		{reply: fmt.Sprintf(`{"return":{"exited":true,"exitcode":7,"err-data":%q}}`, b64([]byte("bad"))), done: true, exit: 7, err: "bad"},
		{reply: `{"return":{"exited":true,"signal":9}}`, done: true, exit: -1},
		{reply: `{"error":{"class":"GenericError"}}`, bad: true},
		{reply: `{"return":{"exited":true,"exitcode":0,"out-data":"!!"}}`, done: true, bad: true},
	} {
		done, exit, out, errb, err := ParseStatus(tc.reply)
		if tc.bad {
			require.Error(t, err, tc.reply)
			continue
		}
		require.NoError(t, err, tc.reply)
		require.Equal(t, tc.done, done, tc.reply)
		require.Equal(t, tc.exit, exit, tc.reply)
		require.Equal(t, tc.out, string(out), tc.reply)
		require.Equal(t, tc.err, string(errb), tc.reply)
	}
}

// fakeAgent plays a guest agent whose processes end after a number of polls.
type fakeAgent struct {
	mu      sync.Mutex
	pid     int
	polls   map[int]int // pid → polls until exit; <0 never
	execs   []string
	failing bool
}

func (f *fakeAgent) QemuAgentCommand(_ context.Context, _ string, cmd string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return "", errors.New("guest agent is not connected")
	}
	var req struct {
		Execute   string
		Arguments struct {
			PID int
			Arg []string
		}
	}
	if err := json.Unmarshal([]byte(cmd), &req); err != nil {
		return "", err
	}
	switch req.Execute {
	case "guest-exec":
		f.pid++
		f.execs = append(f.execs, req.Arguments.Arg[1])
		if strings.HasPrefix(req.Arguments.Arg[1], "sleep") {
			f.polls[f.pid] = -1
		}
		return fmt.Sprintf(`{"return":{"pid":%d}}`, f.pid), nil
	default:
		n := f.polls[req.Arguments.PID]
		if n != 0 {
			if n > 0 {
				f.polls[req.Arguments.PID] = n - 1
			}
			return `{"return":{"exited":false}}`, nil
		}
		return fmt.Sprintf(`{"return":{"exited":true,"exitcode":%d,"out-data":%q}}`, req.Arguments.PID, base64.StdEncoding.EncodeToString([]byte("out"))), nil
	}
}

func TestAgentRunner(t *testing.T) {
	a := &fakeAgent{polls: map[int]int{1: 2}}
	r := &AgentRunner{Agent: a, Domain: "web", Poll: time.Millisecond}
	res := r.Run(context.Background(), Hook{Name: PreSnapshot, Command: "true", Timeout: time.Second})
	require.Equal(t, 1, res.Exit) // the fake's exit code is the pid
	require.Equal(t, "out", res.Stdout)
	require.False(t, res.TimedOut)

	res = r.Run(context.Background(), Hook{Name: PreSnapshot, Command: "sleep 1000", Timeout: 20 * time.Millisecond})
	require.True(t, res.TimedOut)
	require.Contains(t, a.execs[len(a.execs)-1], "kill -KILL 2", "a hung hook is killed")
	require.GreaterOrEqual(t, res.Elapsed, 20*time.Millisecond, "the elapsed time is reported")
	require.Contains(t, res.Err().Error(), "still running after ")
	require.NotContains(t, res.Err().Error(), "after 0s")

	a.failing = true
	res = r.Run(context.Background(), Hook{Name: PreSnapshot, Command: "true", Timeout: time.Second})
	require.Contains(t, res.Error, "not connected")
	require.False(t, res.OK())
}

func TestLocalRunner(t *testing.T) {
	res := LocalRunner{}.Run(context.Background(), Hook{Name: "x", Command: `echo "$SB_HOOK"; echo err >&2; exit 5`, Env: map[string]string{"SB_HOOK": "x"}, Timeout: 5 * time.Second})
	require.Equal(t, 5, res.Exit)
	require.Equal(t, "x\n", res.Stdout)
	require.Equal(t, "err\n", res.Stderr)
	start := time.Now()
	res = LocalRunner{}.Run(context.Background(), Hook{Name: "x", Command: "sleep 30 & sleep 30", Timeout: 100 * time.Millisecond})
	require.True(t, res.TimedOut)
	require.Less(t, time.Since(start), 10*time.Second)
}
