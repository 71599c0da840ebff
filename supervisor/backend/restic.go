package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/snapshot-backup/snapshot-backup/internal/vmrecord"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/retention"
)

// Restic is restic 0.14 as found in the appliance userland.
type Restic struct {
	Run  Runner
	Sink Sink
}

var _ Backend = (*Restic)(nil)

// cmd returns the global argv and env of one restic run for req.
func (r *Restic) setup(req Request) ([]string, []string, error) {
	d := req.Dirs
	repo, opts, err := ResticRepo(*req.Job.Repo, req.Repo, d)
	if err != nil {
		return nil, nil, err
	}
	if err := prepareTarget(req); err != nil {
		return nil, nil, err
	}
	mkdirs(req.Root, path.Join(d.Cache, "tmp"), path.Join(d.Cache, "restic"))
	return ResticGlobal(repo, opts, *req.Job.Repo), ResticEnv(req.Job.Client, req.secret(req.Job.Repo.PassphraseFile), d), nil
}

func (r *Restic) run(ctx context.Context, env []string, dir string, priority bool, argv ...string) ([]byte, error) {
	return runTool(ctx, r.Run, r.Sink, toolCmd{argv: argv, env: env, dir: dir, priority: priority})
}

// ensureRepo initialises the repository unless it exists. Only "there is no
// repository" leads to init: a wrong password or an unreachable server is
// an error, never a reason to create a second repository.
func (r *Restic) ensureRepo(ctx context.Context, g, env []string) error {
	var stderr strings.Builder
	_, err := runTool(ctx, r.Run, r.Sink, toolCmd{argv: append(append([]string(nil), g...), "cat", "config"), env: env, dir: "/", stderr: &stderr})
	if err == nil {
		return nil
	}
	if !NoResticRepo(stderr.String()) {
		return err
	}
	r.Sink.Logf("initialising restic repository")
	_, err = r.run(ctx, env, "/", false, append(append([]string(nil), g...), "init")...)
	return err
}

// NoResticRepo says whether restic's stderr reports that the repository's
// config does not exist (local: "no such file or directory", sftp: "file
// does not exist", S3: "The specified key does not exist."), as opposed to
// a target that cannot be reached or a wrong password.
func NoResticRepo(stderr string) bool {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "unable to open config file") &&
			(strings.Contains(l, "no such file or directory") || strings.Contains(l, "does not exist")) {
			return true
		}
	}
	return false
}

// Backup implements Backend.
func (r *Restic) Backup(ctx context.Context, req Request) (job.Stats, error) {
	if err := checkSources(req); err != nil {
		return job.Stats{}, err
	}
	g, env, err := r.setup(req)
	if err != nil {
		return job.Stats{}, err
	}
	if err := r.ensureRepo(ctx, g, env); err != nil {
		return job.Stats{}, err
	}
	// A backup killed mid-way leaves a stale lock; restic removes only
	// locks of dead processes on this host (the appliance's hostname is
	// constant), so this never breaks a concurrent run elsewhere.
	if _, err := r.run(ctx, env, "/", false, append(append([]string(nil), g...), "unlock")...); err != nil {
		return job.Stats{}, err
	}
	d := req.Dirs
	argv, err := ResticBackupArgs(g, req.Job, d.Snapshot)
	if err != nil {
		return job.Stats{}, err
	}
	// Exit code 3 (restic 0.14: "at least one source file could not be
	// read"): the snapshot is written, without those files; its JSON
	// error messages on stderr name them.
	unread := &unreadable{snapshot: d.Snapshot}
	errs := lineFunc(func(l string) {
		if item, why, ok := ParseResticError(l); ok {
			unread.add(item, why)
		}
	})
	at := req.Job.Backup.Time
	if at.IsZero() {
		at = time.Now()
	}
	out, err := runTool(ctx, r.Run, r.Sink, toolCmd{argv: argv, env: env, dir: d.Snapshot, priority: true, warnCodes: []int{3}, stderr: errs})
	var w *toolWarning
	if err != nil && !errors.As(err, &w) {
		return job.Stats{}, err
	}
	rec, perr := ParseResticBackup(out)
	if perr != nil {
		return rec, perr
	}
	if err := emptyArchive("restic backup", rec, 0); err != nil {
		return rec, err
	}
	if w != nil {
		rec.Warning = warning("restic backup", w.code, unread, w.tail)
		unread.record(&rec)
	}
	if req.VMDir != "" {
		VMWarning(&rec, storedVM(r.Sink, func() error {
			_, err := r.run(ctx, env, "/", true, ResticVMArgs(g, req.Job.Client, rec.Archive, req.VMDir, at)...)
			return err
		}))
	}
	return rec, nil
}

// Restore implements Backend: restic 0.14 restores the stored absolute
// paths, so it restores into a staging directory on the destination and
// the snapshot mount point's content is moved up into place.
func (r *Restic) Restore(ctx context.Context, req Request) (string, error) {
	g, env, err := r.setup(req)
	if err != nil {
		return "", err
	}
	id := req.Archive
	if id == "" {
		id = "latest"
	}
	d := req.Dirs
	paths, err := job.CleanPaths(req.Paths)
	if err != nil {
		return "", err
	}
	stage := path.Join(d.Restore, ".snapshot-backup-restore")
	argv := append(append([]string(nil), g...), "restore", id, "--host", req.Job.Client, "--target", stage)
	if id == "latest" {
		argv = append(argv, "--tag", retention.ResticTag) // a backup, not a VM record
	}
	for _, p := range paths {
		argv = append(argv, "--include", path.Join(d.Snapshot, p))
	}
	if req.Verify {
		argv = append(argv, "--verify")
	}
	if _, err := r.run(ctx, env, "/", true, argv...); err != nil {
		return "", err
	}
	from := filepath.Join(req.Root, stage, d.Snapshot)
	entries, err := os.ReadDir(from)
	if err != nil && !(len(paths) > 0 && os.IsNotExist(err)) {
		return "", fmt.Errorf("restic restore: %w", err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(from, e.Name()), filepath.Join(req.Root, d.Restore, e.Name())); err == nil {
			continue
		}
		// The destination holds that directory already (an in-place
		// recovery keeps lost+found and the mount points of the client's
		// other filesystems), or it is on another filesystem: copy it in,
		// merging with what is there.
		src := path.Join(stage, d.Snapshot, e.Name())
		if _, err := runTool(ctx, r.Run, r.Sink, toolCmd{argv: []string{"cp", "-a", "--", src, d.Restore + "/"}, dir: "/", priority: true}); err != nil {
			return "", fmt.Errorf("restic restore: copy %s into place: %w", e.Name(), err)
		}
	}
	if err := os.RemoveAll(filepath.Join(req.Root, stage)); err != nil {
		return "", err
	}
	return id, nil
}

// Retain implements Backend: forget --prune with the policy.
func (r *Restic) Retain(ctx context.Context, req Request) error {
	g, env, err := r.setup(req)
	if err != nil {
		return err
	}
	// The VM records first, by the backups' policy (their times are the
	// backups'), without a prune: the backups' forget prunes for both.
	vm, err := retention.ResticForgetTagged(g, req.Job.Client, vmrecord.ResticTag, false, req.Job.Repo.Retention)
	if err != nil || vm == nil {
		return err
	}
	if _, err := r.run(ctx, env, "/", true, vm...); err != nil {
		return err
	}
	argv, err := retention.ResticForget(g, req.Job.Client, req.Job.Repo.Retention)
	if err != nil {
		return err
	}
	_, err = r.run(ctx, env, "/", true, argv...)
	return err
}

// Check implements Backend.
func (r *Restic) Check(ctx context.Context, req Request) error {
	g, env, err := r.setup(req)
	if err != nil {
		return err
	}
	_, err = r.run(ctx, env, "/", true, append(append([]string(nil), g...), "check")...)
	return err
}

// BreakLock implements Backend: restic unlock --remove-all (plain unlock
// keeps a lock younger than 30 minutes from another host, and every
// appliance boot is another host to restic).
func (r *Restic) BreakLock(ctx context.Context, req Request) error {
	g, env, err := r.setup(req)
	if err != nil {
		return err
	}
	var stderr strings.Builder
	_, err = runTool(ctx, r.Run, r.Sink, toolCmd{argv: append(append([]string(nil), g...), "unlock", "--remove-all"), env: env, dir: "/", stderr: &stderr})
	if err != nil && NoResticRepo(stderr.String()) {
		return nil
	}
	return err
}

// Snapshots implements Backend.
func (r *Restic) Snapshots(ctx context.Context, req Request) ([]Snapshot, error) {
	g, env, err := r.setup(req)
	if err != nil {
		return nil, err
	}
	out, err := r.run(ctx, env, "/", false, append(append([]string(nil), g...), "snapshots", "--json", "--host", req.Job.Client)...)
	if err != nil {
		return nil, err
	}
	snaps, err := ParseResticSnapshots(out)
	if err != nil {
		return nil, err
	}
	// restic 0.14's snapshots carry no sizes: one stats call each.
	for i := range snaps {
		out, err := r.run(ctx, env, "/", false, append(append([]string(nil), g...), "stats", "--json", "--mode", "restore-size", snaps[i].ID)...)
		if err != nil {
			return nil, err
		}
		var st struct {
			Size int64 `json:"total_size"`
		}
		if err := json.Unmarshal(out, &st); err != nil {
			return nil, fmt.Errorf("parse restic stats --json: %w", err)
		}
		snaps[i].Size = st.Size
	}
	return snaps, nil
}

// Entries implements Backend: restic ls --json, paths below the snapshot
// mount made relative again.
func (r *Restic) Entries(ctx context.Context, req Request, id string) ([]Entry, error) {
	g, env, err := r.setup(req)
	if err != nil {
		return nil, err
	}
	out, err := r.run(ctx, env, "/", false, append(append([]string(nil), g...), "ls", "--json", "--host", req.Job.Client, id)...)
	if err != nil {
		return nil, err
	}
	return ParseResticLs(out, req.Dirs.Snapshot)
}
