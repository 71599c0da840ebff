package backend

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// SSHConfigPath is the ssh client configuration every ssh-based backend
// uses (ssh -F; duplicity's paramiko reads it as ~/.ssh/config).
func (d Dirs) SSHConfigPath() string { return path.Join(d.Work, "home", ".ssh", "config") }

// Home is HOME for the tools: on the work tmpfs.
func (d Dirs) Home() string { return path.Join(d.Work, "home") }

// SSHConfig renders the ssh client configuration for a target: the pinned
// known_hosts only (an unknown or changed host key is a failure, never a
// question), the job's identity, no agent, no password prompts, and
// keepalives so a dead link fails the job instead of hanging it.
func SSHConfig(t target.Target, s job.SSH, identity, knownHosts string) string {
	var b strings.Builder
	b.WriteString("# written by the snapshot-backup supervisor for this job only\nHost *\n")
	if t.User != "" {
		fmt.Fprintf(&b, "  User %s\n", t.User)
	}
	fmt.Fprintf(&b, "  Port %d\n", t.PortOrDefault())
	fmt.Fprintf(&b, "  IdentityFile %s\n", identity)
	b.WriteString("  IdentitiesOnly yes\n  IdentityAgent none\n")
	fmt.Fprintf(&b, "  UserKnownHostsFile %s\n", knownHosts)
	b.WriteString("  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  UpdateHostKeys no\n")
	b.WriteString("  BatchMode yes\n  PasswordAuthentication no\n  KbdInteractiveAuthentication no\n")
	b.WriteString("  ConnectTimeout 30\n  ServerAliveInterval 15\n  ServerAliveCountMax 4\n")
	if s.ProxyCommand != "" {
		fmt.Fprintf(&b, "  ProxyCommand %s\n", s.ProxyCommand)
	}
	return b.String()
}

// writeSSHConfig writes the ssh configuration (and a HOME holding it) into
// the work dir under root.
func writeSSHConfig(root string, req Request) error {
	r := req.Job.Repo
	d := req.D()
	cfg := SSHConfig(r.Target, r.SSH, req.secret(r.Secrets[target.SSHIdentity]), req.secret(r.Secrets[target.SSHKnownHosts]))
	p := filepath.Join(root, d.SSHConfigPath())
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("ssh config: %w", err)
	}
	return os.WriteFile(p, []byte(cfg), 0o600)
}

// AliasKnownHosts returns the lines of a known_hosts file that match
// host:port, re-labelled for alias (e.g. "[127.0.0.1]:40022"), so a client
// that reaches the host through a local relay still checks the pinned key.
// Hashed entries (|1|salt|hash) are matched too.
func AliasKnownHosts(data []byte, host string, port int, alias string) ([]byte, error) {
	name := host
	if port != 22 && port != 0 {
		name = "[" + host + "]:" + strconv.Itoa(port)
	}
	var out strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], "@") {
			continue
		}
		if knownHostMatch(f[0], name) {
			fmt.Fprintf(&out, "%s %s\n", alias, strings.Join(f[1:], " "))
		}
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("known_hosts has no key for %s: the host key must be pinned", name)
	}
	return []byte(out.String()), nil
}

func knownHostMatch(field, name string) bool {
	for _, h := range strings.Split(field, ",") {
		if strings.HasPrefix(h, "|1|") {
			parts := strings.Split(h, "|")
			if len(parts) != 4 {
				continue
			}
			salt, err1 := base64.StdEncoding.DecodeString(parts[2])
			want, err2 := base64.StdEncoding.DecodeString(parts[3])
			if err1 != nil || err2 != nil {
				continue
			}
			m := hmac.New(sha1.New, salt)
			m.Write([]byte(name))
			if hmac.Equal(m.Sum(nil), want) {
				return true
			}
			continue
		}
		if h == name {
			return true
		}
	}
	return false
}

// hostPort joins host and port for URLs.
func hostPort(host string, port int) string {
	if port == 0 {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
