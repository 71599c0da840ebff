package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// BorgLocation is borg's repository for a job: the local path for file
// targets, ssh://user@host:port/path (borg serve on the server) otherwise.
func BorgLocation(r job.Repo, local string) (string, error) {
	t, err := ParseTarget(r.URL)
	if err != nil {
		return "", err
	}
	switch t.Scheme {
	case "file":
		return local, nil
	case "ssh", "sftp":
		user := ""
		if t.User != "" {
			user = t.User + "@"
		}
		return "ssh://" + user + hostPort(t.Host, t.SSHPort()) + t.Path, nil
	}
	return "", fmt.Errorf("borg cannot write to %s:// targets", t.Scheme)
}

// resolve fills in Repo for network targets and writes the ssh files.
func (b *Borg) resolve(req Request) (Request, error) {
	if req.Job.Repo.URL == "" {
		return req, nil // a hand-made job with a local Repo
	}
	loc, err := BorgLocation(req.Job.Repo, req.Repo)
	if err != nil {
		return req, err
	}
	req.Repo = loc
	return req, prepareTarget(req)
}

// BorgPruneArgs builds borg prune for a retention policy (nil when the
// policy keeps everything). Only this client's archives are considered.
func BorgPruneArgs(repo, client string, r job.Retention) ([]string, error) {
	if r.Empty() {
		return nil, nil
	}
	if r.MaxFullBackups > 0 || r.MaxFullsWithIncrs > 0 {
		return nil, fmt.Errorf("borg: max_fullbackups and max_fulls_with_incrs are duplicity policies")
	}
	argv := []string{"borg", "prune", "--log-json", "--list", "--glob-archives", client + "-*"}
	keep, err := keepFlags(r, "H")
	if err != nil {
		return nil, err
	}
	return append(append(argv, keep...), "--", repo), nil
}

// Retain implements Backend: prune, then compact to free the space.
func (b *Borg) Retain(ctx context.Context, req Request) error {
	req, err := b.resolve(req)
	if err != nil {
		return err
	}
	argv, err := BorgPruneArgs(req.Repo, req.Job.Client, req.Job.Repo.Retention)
	if err != nil || argv == nil {
		return err
	}
	if _, err := b.borg(ctx, req, argv, "/", true); err != nil {
		return err
	}
	_, err = b.borg(ctx, req, []string{"borg", "compact", "--log-json", "--", req.Repo}, "/", true)
	return err
}

// Check implements Backend.
func (b *Borg) Check(ctx context.Context, req Request) error {
	req, err := b.resolve(req)
	if err != nil {
		return err
	}
	_, err = b.borg(ctx, req, []string{"borg", "check", "--log-json", "--", req.Repo}, "/", true)
	return err
}

// Snapshots implements Backend.
func (b *Borg) Snapshots(ctx context.Context, req Request) ([]Snapshot, error) {
	req, err := b.resolve(req)
	if err != nil {
		return nil, err
	}
	out, err := b.borg(ctx, req, []string{"borg", "list", "--log-json", "--json", "--", req.Repo}, "/", false)
	if err != nil {
		return nil, err
	}
	var l struct {
		Archives []struct {
			Name string `json:"name"`
			Time string `json:"time"`
		} `json:"archives"`
	}
	if err := json.Unmarshal(out, &l); err != nil {
		return nil, fmt.Errorf("parse borg list --json: %w", err)
	}
	var s []Snapshot
	for _, a := range l.Archives {
		t, _ := time.Parse("2006-01-02T15:04:05.000000", a.Time)
		s = append(s, Snapshot{ID: a.Name, Time: t, Full: true})
	}
	return s, nil
}
