package boot

import (
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Reaper collects orphans that the kernel re-parents to PID 1, without
// stealing the exit status of the commands the supervisor itself waits for
// (os/exec waits for those by pid; a Wait4(-1) racing it would make
// cmd.Wait fail with ECHILD).
//
// The rule: every command the supervisor starts is the leader of its own
// process group (pgid == pid) and is announced with Begin/End around its
// run. While any is running, only zombies whose pgid differs from their pid
// are reaped: those cannot be ours. When none runs, everything is reaped.
type Reaper struct {
	mu       sync.Mutex
	inflight int
}

// NewReaper starts reaping on SIGCHLD and once a second.
func NewReaper() *Reaper {
	r := &Reaper{}
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, unix.SIGCHLD)
	go func() {
		t := time.NewTicker(time.Second)
		for {
			select {
			case <-ch:
			case <-t.C:
			}
			r.reap()
		}
	}()
	return r
}

// Begin announces a command about to start; End that it has been waited for.
func (r *Reaper) Begin() {
	r.mu.Lock()
	r.inflight++
	r.mu.Unlock()
}

// End undoes Begin.
func (r *Reaper) End() {
	r.mu.Lock()
	r.inflight--
	r.mu.Unlock()
}

func (r *Reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight == 0 {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				return
			}
		}
	}
	for _, pid := range orphanZombies() {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// orphanZombies lists zombie children of PID 1 that are not process-group
// leaders.
func orphanZombies() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		state, ppid, pgid, ok := parseStat(string(b))
		if ok && state == "Z" && ppid == 1 && pgid != pid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// parseStat extracts state, ppid and pgrp from /proc/PID/stat, whose second
// field (comm, in parentheses) may contain spaces.
func parseStat(s string) (state string, ppid, pgid int, ok bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return "", 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	return f[0], ppid, pgid, err1 == nil && err2 == nil
}
