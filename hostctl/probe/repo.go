package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/execx"
)

// InitRepo initialises the borg or restic repository at dir on the ssh
// target with the tool installed on this host, logging in with the
// profile's identity against the pinned host key (ssh in batch mode).
// It reports false (and no error) when the tool is not installed here:
// the appliance then initialises the repository at the first backup. A
// repository that exists already is fine.
func InitRepo(ctx context.Context, p *config.Profile, e Endpoint, dir string) (bool, error) {
	tool := p.Backend
	if tool != "borg" && tool != "restic" {
		return false, nil
	}
	if _, err := exec.LookPath(tool); err != nil {
		return false, nil
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		return false, nil
	}
	c, err := toolCmd(p, e, dir)
	if err != nil {
		return false, err
	}
	switch tool {
	case "restic":
		c.Argv = append(c.Argv, "init")
	case "borg":
		mode := p.Encryption.Mode
		if mode == "" {
			mode = "repokey"
		}
		c.Argv = []string{"borg", "init", "--encryption=" + mode, "--", c.Argv[len(c.Argv)-1]}
	}
	if _, err := execx.Run(ctx, c); err != nil {
		msg := err.Error()
		if strings.Contains(msg, "already exists") || strings.Contains(msg, "already initialized") {
			return true, nil
		}
		return false, fmt.Errorf("%s init %s: %w", tool, dir, err)
	}
	return true, nil
}

// toolCmd is the host's borg or restic for the repository at dir on the
// ssh target, logging in with the profile's identity against the pinned
// host key (ssh in batch mode): restic's argv up to its command, borg's
// ending with the repository's location; the passphrase from its file.
func toolCmd(p *config.Profile, e Endpoint, dir string) (execx.Cmd, error) {
	host, port, err := net.SplitHostPort(e.Dial)
	if err != nil {
		return execx.Cmd{}, err
	}
	ssh := []string{"ssh", "-i", p.SSH.IdentityFile, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + p.SSH.KnownHosts,
		"-o", "HostKeyAlias=" + e.Name, "-o", "ConnectTimeout=15", "-p", port}
	for _, a := range ssh {
		if strings.ContainsAny(a, " \t\"'") {
			return execx.Cmd{}, fmt.Errorf("%q: ssh options with spaces or quotes cannot be passed to %s", a, p.Backend)
		}
	}
	var c execx.Cmd
	switch p.Backend {
	case "restic":
		sftpCmd := strings.Join(append(ssh, e.User+"@"+host, "-s", "sftp"), " ")
		c.Argv = []string{"restic", "-r", "sftp:" + e.User + "@" + host + ":" + dir, "-o", "sftp.command=" + sftpCmd,
			"--password-file", p.Encryption.PassphraseFile}
	case "borg":
		c.Argv = []string{fmt.Sprintf("ssh://%s@%s:%s%s", e.User, host, port, dir)}
		c.Env = []string{"BORG_RSH=" + strings.Join(ssh, " ")}
		if p.Encryption.PassphraseFile != "" {
			c.Env = append(c.Env, "BORG_PASSCOMMAND=cat "+p.Encryption.PassphraseFile)
		}
	default:
		return execx.Cmd{}, fmt.Errorf("backend %s has no repository to open here", p.Backend)
	}
	return c, nil
}

// errNoBorg: borg is not installed on this host.
var errNoBorg = errors.New("borg is not installed on this host")

// hostBorgList lists the archives of the repository at dir on the ssh
// target with this host's borg and p's credential (errNoBorg without
// borg): what check --connect asks of a key that has no sftp.
func hostBorgList(ctx context.Context, p *config.Profile, e Endpoint, dir string) ([]string, error) {
	if _, err := exec.LookPath("borg"); err != nil {
		return nil, errNoBorg
	}
	c, err := toolCmd(p, e, dir)
	if err != nil {
		return nil, err
	}
	c.Argv = []string{"borg", "list", "--short", "--", c.Argv[0]}
	out, err := execx.Run(ctx, c)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// borgRepoRow is the "repository" row of an append-only borg target,
// whose key cannot list directories: the archives as this host's borg
// lists them through borg serve, when borg is installed here.
func borgRepoRow(ctx context.Context, p *config.Profile, e Endpoint, item, dir string) Result {
	r := Result{Check: "repository", Item: item}
	archives, err := hostBorgList(ctx, p, e, dir)
	switch {
	case errors.Is(err, errNoBorg):
		r.Detail = "not listed: borg is not installed on this host (hostctl list CLIENT reads it through the appliance)"
	case err != nil && strings.Contains(err.Error(), "does not exist"):
		r.Detail = "none yet: the first backup initialises it"
	case err != nil:
		r.Err = err
	default:
		r.Detail = fmt.Sprintf("borg repository, %d archive(s)", len(archives))
	}
	return r
}
