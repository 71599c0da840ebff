package cli

import (
	"fmt"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/retention"
)

// retentionDesc is a client's effective retention as the commands the
// appliance runs after an ok backup, built by the same builders
// (internal/retention) with the target in place of the repository path
// the appliance sees; one command a line.
func retentionDesc(c *config.Resolved) []string {
	p, client := c.Profile, c.Name
	r := job.Retention(p.Retention)
	if r.Empty() {
		return []string{"none: every backup is kept"}
	}
	repo := c.Target.String()
	if !c.Target.NeedsNetwork() && p.Backend != "duplicity" {
		repo = c.Target.Path // borg and restic take a directory
	}
	var cmds [][]string
	var err error
	switch p.Backend {
	case "borg":
		var argv []string
		if argv, err = retention.BorgPrune(repo, client, r); err == nil {
			cmds = [][]string{argv, {"borg", "compact", "--", repo}}
		}
	case "restic":
		var argv []string
		if argv, err = retention.ResticForget([]string{"restic", "--repo", repo}, client, r); err == nil {
			cmds = [][]string{argv}
		}
	case "duplicity":
		cmds, err = retention.Duplicity(nil, r, repo)
	default:
		err = fmt.Errorf("backend %q has no retention", p.Backend)
	}
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	out := make([]string, 0, len(cmds)+1)
	for _, c := range cmds {
		out = append(out, shellJoin(c))
	}
	if p.AppendOnly {
		// Backup jobs carry no retention (runner: clientRepo).
		if runner.PruneReady(c) == "" {
			return append(out, "(never run by backup jobs: the target is append-only; hostctl prune runs it with "+runner.MaintenanceCredential(c)+", keeping at least the newest backup)")
		}
		return append(out, "(never run by backup jobs: the target is append-only; run it on the backup server, as README \"Append-only targets\" says)")
	}
	return append(out, "(after an ok backup only; the newest backup always stays)")
}

// shellJoin renders argv as a shell command line: arguments with
// characters the shell would interpret in single quotes.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@+,%") == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
