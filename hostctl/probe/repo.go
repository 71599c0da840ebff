package probe

import (
	"context"
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
	host, port, err := net.SplitHostPort(e.Dial)
	if err != nil {
		return false, err
	}
	ssh := []string{"ssh", "-i", p.SSH.IdentityFile, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + p.SSH.KnownHosts,
		"-o", "HostKeyAlias=" + e.Name, "-o", "ConnectTimeout=15", "-p", port}
	for _, a := range ssh {
		if strings.ContainsAny(a, " \t\"'") {
			return false, fmt.Errorf("%q: ssh options with spaces or quotes cannot be passed to %s", a, tool)
		}
	}
	var c execx.Cmd
	switch tool {
	case "restic":
		sftpCmd := strings.Join(append(ssh, e.User+"@"+host, "-s", "sftp"), " ")
		c.Argv = []string{"restic", "-r", "sftp:" + e.User + "@" + host + ":" + dir, "-o", "sftp.command=" + sftpCmd,
			"--password-file", p.Encryption.PassphraseFile, "init"}
	case "borg":
		mode := p.Encryption.Mode
		if mode == "" {
			mode = "repokey"
		}
		c.Argv = []string{"borg", "init", "--encryption=" + mode, "--", fmt.Sprintf("ssh://%s@%s:%s%s", e.User, host, port, dir)}
		c.Env = []string{"BORG_RSH=" + strings.Join(ssh, " ")}
		if p.Encryption.PassphraseFile != "" {
			c.Env = append(c.Env, "BORG_PASSCOMMAND=cat "+p.Encryption.PassphraseFile)
		}
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
