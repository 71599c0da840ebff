package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// pruneTable is mode prune.
func pruneTable(p *job.Prune) modeTable {
	return modeTable{job.ModePrune, repoExisting, func(j *job.Job) { j.Prune = p }}
}

// PruneOptions say how a prune takes the repository.
type PruneOptions struct {
	// Trust takes the backups in the repository as they are, instead of
	// only those this host recorded (see job.Prune.Trust).
	Trust bool
}

// Prune applies an append-only client's retention with its profile's
// maintenance credential, which backup appliances never receive: the appliance
// checks the repository, compares its backups with the ones this host
// recorded (archivesPath) and prunes only when they are the same. The
// record then holds what the prune kept.
//
// c is one destination of its client (config.Resolved.Destinations): a
// client with several has one prune job, log directory and report row
// per append-only destination, the row named by its profile.
func (r *Runner) Prune(ctx context.Context, c *config.Resolved, o PruneOptions) *report.Job {
	rep := r.applianceReport(ctx, c.Name, report.ModePrune, r.jobDir("prune-"+destKey(c)), func(rv *reverter, rep *jobReport) error {
		return r.prune(ctx, c, o, rv, rep)
	})
	rep.Profile = c.RowProfile()
	return rep
}

// PruneReady says why c cannot be pruned by hostctl prune ("" when it can).
func PruneReady(c *config.Resolved) string {
	p := c.Profile
	switch {
	case !p.AppendOnly:
		return fmt.Sprintf("profile %s is not append-only: its backup jobs apply its retention", p.Name)
	case c.Target.Scheme == target.S3:
		return fmt.Sprintf("profile %s writes to an S3 bucket: its owner prunes, with keys of their own (README: S3 bucket policy)", p.Name)
	case c.Target.Scheme == target.REST && p.Maintenance.PasswordFile == "":
		return fmt.Sprintf("profile %s has no maintenance.password_file: prune on the backup server", p.Name)
	case c.Target.Scheme != target.REST && p.Maintenance.IdentityFile == "":
		return fmt.Sprintf("profile %s has no maintenance.identity_file: prune on the backup server", p.Name)
	case job.Retention(p.Retention).Empty():
		return fmt.Sprintf("profile %s has no retention: every backup is kept", p.Name)
	}
	return ""
}

// MaintenanceCredential names the credential prune jobs of c use, for
// check and the reports: the maintenance key, or the maintenance
// password and server.
func MaintenanceCredential(c *config.Resolved) string {
	m := c.Profile.Maintenance
	if c.Target.Scheme == target.REST {
		return fmt.Sprintf("%s on port %d", m.PasswordFile, m.Port)
	}
	return m.IdentityFile
}

// withMaintenance gives a prune job the maintenance credential in place
// of the backup one: for borg over ssh the maintenance key, for a REST
// server the maintenance password and the port of the server without
// --append-only.
func withMaintenance(c *config.Resolved, ret job.Retention) (jobOption, error) {
	m := c.Profile.Maintenance
	file, secret := m.IdentityFile, target.SSHIdentity
	if c.Target.Scheme == target.REST {
		file, secret = m.PasswordFile, target.RESTPassword
	}
	cred, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("profile %s: maintenance credential: %w", c.Profile.Name, err)
	}
	return func(aj *applianceJob) error {
		aj.job.Repo.Retention = ret
		aj.secrets[job.SecretFile(secret)] = cred
		if c.Target.Scheme == target.REST {
			aj.job.Repo.Target.Port = m.Port
		}
		return nil
	}, nil
}

func (r *Runner) prune(ctx context.Context, c *config.Resolved, o PruneOptions, rv *reverter, rep *jobReport) error {
	if why := PruneReady(c); why != "" {
		return errors.New(why)
	}
	known, err := r.recordedArchives(destKey(c))
	if err != nil {
		return err
	}
	ret := job.Retention(c.Profile.Retention)
	ret.KeepLast = max(ret.KeepLast, 1) // never the last backup
	withCred, err := withMaintenance(c, ret)
	if err != nil {
		return err
	}
	jp := &job.Prune{Known: known, Trust: o.Trust || known == nil}
	aj, res, err := r.runFromArchive(ctx, rv, rep, c, pruneTable(jp), named("prune-"+c.Name), withCred)
	if err != nil {
		return err
	}
	if res.Done.Status != job.StatusOK {
		return fmt.Errorf("prune failed: %s (log: %s)", res.LastError(), aj.logPath())
	}
	var kept []string
	for _, s := range res.Snapshots() {
		kept = append(kept, s.Archive)
	}
	rep.Pruned, rep.Kept = res.Pruned(), len(kept)
	return r.writeArchives(destKey(c), kept)
}

// destKey names what the host keeps per destination of a client: the
// client's name for its first (as before clients had several), CLIENT.PROFILE
// for the others (as the appliance names their caches: job.Repo.Cache).
func destKey(c *config.Resolved) string {
	if c.Index == 0 {
		return c.Name
	}
	return c.Name + "." + c.Profile.Name
}

// archivesPath is where the host records an append-only client's
// backups: one archive name per line, appended by each ok backup and
// rewritten by each prune with what it kept. A prune removes nothing
// while the repository holds other backups than these.
func (r *Runner) archivesPath(client string) string {
	return filepath.Join(r.cfg.Host.StateDir, "archives", client)
}

// recordedArchives reads the record (nil when there is none yet).
func (r *Runner) recordedArchives(client string) ([]string, error) {
	f, err := os.Open(r.archivesPath(client))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := []string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if a := strings.TrimSpace(sc.Text()); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, sc.Err()
}

// recordArchive adds an ok backup of an append-only client to the record.
func (r *Runner) recordArchive(c *config.Resolved, archive string) error {
	if !c.Profile.AppendOnly || archive == "" {
		return nil
	}
	p := r.archivesPath(destKey(c))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, archive); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (r *Runner) writeArchives(client string, archives []string) error {
	p := r.archivesPath(client)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	data := ""
	for _, a := range archives {
		data += a + "\n"
	}
	return fsutil.WriteFileAtomic(p, []byte(data), 0o600)
}
