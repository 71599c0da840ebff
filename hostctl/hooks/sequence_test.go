package hooks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeRunner records what ran, in order, and answers from a script.
type fakeRunner struct {
	mu    sync.Mutex
	log   *[]string
	exit  map[string]int  // hook name → exit code
	hang  map[string]bool // hook name → never ends (until its time limit)
	envOf map[string]map[string]string
}

var _ Runner = (*fakeRunner)(nil)

func (f *fakeRunner) Run(ctx context.Context, h Hook) Result {
	f.mu.Lock()
	*f.log = append(*f.log, h.Name)
	if f.envOf == nil {
		f.envOf = map[string]map[string]string{}
	}
	f.envOf[h.Name] = h.Env
	f.mu.Unlock()
	r := Result{Name: h.Name, Command: h.Command, Started: time.Now(), Exit: f.exit[h.Name]}
	if f.hang[h.Name] {
		select {
		case <-time.After(h.Timeout):
			r.TimedOut, r.Exit = true, -1
		case <-ctx.Done():
			r.Error, r.Exit = ctx.Err().Error(), -1
		}
	}
	r.Elapsed = time.Since(r.Started)
	return r
}

type fakeFreezer struct {
	log       *[]string
	freezeErr error
}

func (f *fakeFreezer) FSFreeze(context.Context) error {
	*f.log = append(*f.log, "freeze")
	return f.freezeErr
}

func (f *fakeFreezer) FSThaw(context.Context) error {
	*f.log = append(*f.log, "thaw")
	return nil
}

func TestSequence(t *testing.T) {
	all := Plan{Pre: "pre", On: "on", Post: "post", Timeout: 50 * time.Millisecond}
	frozen := all
	frozen.Freeze = true
	goOn := all
	goOn.ContinueOnPreFailure = true
	onlyPre := Plan{Pre: "pre", Timeout: time.Second}
	for _, tc := range []struct {
		name      string
		plan      Plan
		exit      map[string]int
		hang      map[string]bool
		snapErr   error
		freezeErr error
		cancel    bool
		want      []string
		taken     bool
		errIs     error
		errHas    string
	}{
		{name: "no hooks", plan: Plan{}, want: []string{"snapshot"}, taken: true},
		{name: "all ok", plan: all, want: []string{PreSnapshot, "snapshot", OnSnapshot}, taken: true},
		{name: "freeze around snapshot", plan: frozen, want: []string{PreSnapshot, "freeze", "snapshot", "thaw", OnSnapshot}, taken: true},
		{name: "pre fails: no snapshot, on still runs", plan: all, exit: map[string]int{PreSnapshot: 3},
			want: []string{PreSnapshot, OnSnapshot}, errIs: ErrPreFailed, errHas: "exit code 3"},
		{name: "pre fails, configured to go on", plan: goOn, exit: map[string]int{PreSnapshot: 3},
			want: []string{PreSnapshot, "snapshot", OnSnapshot}, taken: true},
		{name: "pre hangs: time limit, on runs", plan: all, hang: map[string]bool{PreSnapshot: true},
			want: []string{PreSnapshot, OnSnapshot}, errIs: ErrPreFailed, errHas: "abandoned"},
		{name: "snapshot fails: thaw and on run", plan: frozen, snapErr: errors.New("disk full"),
			want: []string{PreSnapshot, "freeze", "snapshot", "thaw", OnSnapshot}, errHas: "disk full"},
		{name: "freeze fails: thawed, no snapshot, on runs", plan: frozen, freezeErr: errors.New("no agent"),
			want: []string{PreSnapshot, "freeze", "thaw", OnSnapshot}, errHas: "freeze: no agent"},
		{name: "on fails after a good snapshot", plan: all, exit: map[string]int{OnSnapshot: 1},
			want: []string{PreSnapshot, "snapshot", OnSnapshot}, taken: true, errHas: "on_snapshot: exit code 1"},
		{name: "on hangs: bounded", plan: all, hang: map[string]bool{OnSnapshot: true},
			want: []string{PreSnapshot, "snapshot", OnSnapshot}, taken: true, errHas: "abandoned"},
		{name: "only pre", plan: onlyPre, want: []string{PreSnapshot, "snapshot"}, taken: true},
		{name: "cancelled: no snapshot, on still runs", plan: frozen, cancel: true,
			want: []string{PreSnapshot, OnSnapshot}, errIs: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log []string
			run := &fakeRunner{log: &log, exit: tc.exit, hang: tc.hang}
			fr := &fakeFreezer{log: &log, freezeErr: tc.freezeErr}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				// cancelled while pre_snapshot runs
				run.hang = map[string]bool{}
				cancel()
			}
			w, err := tc.plan.Sequence(ctx, run, fr, func(context.Context) error {
				log = append(log, "snapshot")
				return tc.snapErr
			})
			require.Equal(t, tc.want, log)
			require.Equal(t, tc.taken, w.SnapshotTaken)
			if tc.errIs == nil && tc.errHas == "" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				if tc.errIs != nil {
					require.ErrorIs(t, err, tc.errIs)
				}
				require.Contains(t, err.Error(), tc.errHas)
			}
			require.GreaterOrEqual(t, w.Pause, time.Duration(0))
			if tc.plan.Freeze && tc.taken {
				require.Positive(t, w.Frozen)
			}
		})
	}
}

func TestPostGetsOutcome(t *testing.T) {
	var log []string
	run := &fakeRunner{log: &log}
	p := Plan{Post: "post", Env: map[string]string{"SB_CLIENT": "web"}}
	r := p.RunPost(context.Background(), run, "failed", "backup failed")
	require.NotNil(t, r)
	require.Equal(t, []string{PostSnapshot}, log)
	require.Equal(t, map[string]string{"SB_CLIENT": "web", "SB_HOOK": PostSnapshot, "SB_OUTCOME": "failed", "SB_ERROR": "backup failed"}, run.envOf[PostSnapshot])
	require.Nil(t, Plan{}.RunPost(context.Background(), run, "ok", ""))
}

func TestPauseWindow(t *testing.T) {
	var log []string
	p := Plan{Pre: "pre", On: "on", Timeout: time.Second}
	w, err := p.Sequence(context.Background(), &fakeRunner{log: &log}, &fakeFreezer{log: &log}, func(context.Context) error {
		time.Sleep(30 * time.Millisecond)
		return nil
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, w.Pause, 30*time.Millisecond)
	require.Less(t, w.Pause, time.Second)
}

func TestResultErr(t *testing.T) {
	require.NoError(t, Result{Name: "x"}.Err())
	require.EqualError(t, Result{Name: "x", Exit: 2, Stderr: "a\nno lock\n"}.Err(), "hook x: exit code 2: no lock")
	require.True(t, strings.Contains(Result{Name: "x", TimedOut: true, Elapsed: time.Second}.Err().Error(), "after 1s"))
}
