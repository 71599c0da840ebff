// Package probe talks to a profile's backup target from the host: it sets
// up an ssh/sftp target once with a password (authorized key, pinned host
// key, client directories, repositories) and probes every kind of target
// for hostctl check --connect. The backups themselves are made by the
// appliance; nothing here reads or writes backup data.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// Endpoint is an ssh server as the appliance names it and as this host
// reaches it.
type Endpoint struct {
	// Name is the host[:port] of the target URL: what known_hosts pins
	// ("[10.0.2.2]:2222", or "nas.example.net" for port 22).
	Name string
	// Dial is where this host connects: the same, except that the
	// appliance's gateway (the host itself under libvirt user-mode
	// networking) is 127.0.0.1 from here.
	Dial string
	User string
	// Mapped says that Dial differs from Name (the appliance's gateway).
	Mapped bool
}

// EndpointFor returns the endpoint of an sftp:// or ssh:// target.
// gateway is the appliance's network gateway ([network] gateway), which is
// this host; a target on it is dialled on 127.0.0.1.
func EndpointFor(t target.Target, gateway string) Endpoint {
	host, port := t.Host, strconv.Itoa(t.PortOrDefault())
	dialHost := host
	if host == gateway {
		dialHost = "127.0.0.1"
	}
	user := t.User
	if user == "" {
		user = "root"
	}
	return Endpoint{
		Name:   knownhosts.Normalize(net.JoinHostPort(host, port)),
		Dial:   net.JoinHostPort(dialHost, port),
		User:   user,
		Mapped: dialHost != host,
	}
}

// String is user@name, plus where it is dialled when that differs.
func (e Endpoint) String() string {
	s := e.User + "@" + e.Name
	if e.Mapped {
		s += " (dialled at " + e.Dial + ")"
	}
	return s
}

// DialTimeout bounds the TCP connect and the ssh handshake.
const DialTimeout = 15 * time.Second

// dial connects and authenticates. hostKey checks the server's key.
func dial(ctx context.Context, e Endpoint, auth []ssh.AuthMethod, hostKey ssh.HostKeyCallback) (*ssh.Client, error) {
	d := net.Dialer{Timeout: DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", e.Dial)
	if err != nil {
		return nil, &StepError{Step: "reachable", Err: err}
	}
	deadline := time.Now().Add(DialTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	c, chans, reqs, err := ssh.NewClientConn(conn, e.Dial, &ssh.ClientConfig{
		User:            e.User,
		Auth:            auth,
		HostKeyCallback: hostKey,
		Timeout:         DialTimeout,
	})
	if err != nil {
		conn.Close()
		step := "authenticated"
		var ke *knownhosts.KeyError
		var he *hostKeyError
		if errors.As(err, &ke) || errors.As(err, &he) {
			step = "host key"
		}
		return nil, &StepError{Step: step, Err: err}
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// StepError says which step of reaching a target failed: "reachable",
// "host key", "authenticated", "writable", "repository".
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// hostKeyError is a host key that was refused before knownhosts saw it.
type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }

// pinnedHostKey checks the server's key against the known_hosts file
// under the endpoint's name (not the address dialled).
func pinnedHostKey(e Endpoint, knownHostsFile string) (ssh.HostKeyCallback, error) {
	cb, err := knownhosts.New(knownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("known_hosts %s: %w", knownHostsFile, err)
	}
	// knownhosts wants host:port; Name drops port 22, as known_hosts does.
	addr := e.Name
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		if err := cb(addr, remote, key); err != nil {
			var ke *knownhosts.KeyError
			if errors.As(err, &ke) && len(ke.Want) == 0 {
				return &hostKeyError{fmt.Sprintf("%s is not in %s (run hostctl target setup)", e.Name, knownHostsFile)}
			}
			if errors.As(err, &ke) {
				return &hostKeyError{fmt.Sprintf("the host key of %s changed: it is %s, %s pins another one (a new server, or someone in between)", e.Name, ssh.FingerprintSHA256(key), knownHostsFile)}
			}
			return err
		}
		return nil
	}, nil
}

// identityAuth reads a private key file for publickey authentication.
func identityAuth(file string) (ssh.AuthMethod, ssh.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, nil, fmt.Errorf("identity %s: %w", file, err)
	}
	return ssh.PublicKeys(s), s, nil
}
