package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// Result is one row of hostctl check --connect: one check of one thing.
type Result struct {
	Check  string // "reachable", "host key", "authenticated", "writable", "repository", "keys"
	Item   string // what was checked: the target, a client's directory, a key file
	Err    error  // nil: OK
	Detail string // what was found when OK
}

// Target checks a profile's target for its clients (targets: each
// client's target, as config resolved it; one under "" for a profile no
// client uses, then its clients' parent directory is probed): reachable,
// authenticated with the profile's identity against the pinned host key,
// each client's directory writable and its repository initialised (or
// empty, for the first backup to initialise). gateway is the appliance's
// gateway, which is this host. Each step is bounded by ctx.
func Target(ctx context.Context, p *config.Profile, targets map[string]target.Target, gateway string) []Result {
	var out []Result
	if len(targets) == 0 {
		return nil
	}
	var t target.Target
	for _, cl := range sortedClients(targets) {
		t = targets[cl]
	}
	if t, ok := targets[""]; ok && (!t.NeedsNetwork() || t.Scheme.OverSSH()) {
		// No client uses it: probe the directory the clients' go in.
		t.Path = path.Dir(t.Path)
		targets = map[string]target.Target{"": t}
	}
	switch {
	case !t.NeedsNetwork():
		for _, cl := range sortedClients(targets) {
			t := targets[cl]
			out = append(out, dirChecks(localFS{}, p.Backend, itemName(cl, t.Path), t.Path)...)
		}
	case t.Scheme.OverSSH():
		out = append(out, probeSSH(ctx, p, targets, gateway)...)
	case t.Scheme == target.S3:
		out = append(out, probeS3(ctx, p, t, gateway))
		if p.AppendOnly {
			out = append(out, probeS3AppendOnly(ctx, p, t, gateway)...)
		}
	case t.Scheme == target.REST:
		out = append(out, probeREST(ctx, p, targets, gateway)...)
	case t.Scheme == target.FTP:
		out = append(out, probeFTP(ctx, t, gateway))
	default:
		// A server this version has no closer look at: is it there?
		out = append(out, probeTCP(ctx, t, gateway))
	}
	return out
}

func itemName(client, dir string) string {
	if client == "" {
		return dir
	}
	return client + ": " + dir
}

func probeSSH(ctx context.Context, p *config.Profile, targets map[string]target.Target, gateway string) []Result {
	var any target.Target
	for _, t := range targets {
		any = t
		break
	}
	if len(targets) == 0 {
		return nil
	}
	e := EndpointFor(any, gateway)
	item := e.String()
	if p.SSH.ProxyCommand != "" {
		item += ", directly (the appliance goes through proxy_command)"
	}
	auth, _, err := identityAuth(p.SSH.IdentityFile)
	if err != nil {
		return []Result{{Check: "keys", Item: p.SSH.IdentityFile, Err: err}}
	}
	hk, err := pinnedHostKey(e, p.SSH.KnownHosts)
	if err != nil {
		return []Result{{Check: "host key", Item: p.SSH.KnownHosts, Err: err}}
	}
	c, err := dial(ctx, e, []ssh.AuthMethod{auth}, hk)
	if err != nil {
		var se *StepError
		step := "connect"
		if errors.As(err, &se) {
			step = se.Step
		}
		out := []Result{}
		for _, s := range []string{"reachable", "host key", "authenticated"} {
			if s == step {
				return append(out, Result{Check: s, Item: item, Err: errors.Unwrap(err)})
			}
			out = append(out, Result{Check: s, Item: item, Detail: "ok"})
		}
		return append(out, Result{Check: step, Item: item, Err: err})
	}
	defer c.Close()
	out := []Result{
		{Check: "reachable", Item: item, Detail: e.Dial},
		{Check: "host key", Item: item, Detail: "matches " + p.SSH.KnownHosts},
		{Check: "authenticated", Item: item, Detail: "as " + e.User + " with " + p.SSH.IdentityFile},
	}
	if p.AppendOnly {
		// Its key runs borg serve and nothing else: no sftp to look with.
		out = append(out, checkRestricted(ctx, e, "append-only", p.SSH.IdentityFile, hk, item))
		if p.Maintenance.IdentityFile != "" {
			out = append(out, checkRestricted(ctx, e, "prune key", p.Maintenance.IdentityFile, hk, item))
		}
		for _, cl := range sortedClients(targets) {
			t := targets[cl]
			out = append(out, borgRepoRow(ctx, p, e, itemName(cl, t.Path), t.Path))
		}
		return out
	}
	fc, err := sftp.NewClient(c)
	if err != nil {
		return append(out, Result{Check: "writable", Item: item, Err: fmt.Errorf("no sftp: %w", err)})
	}
	defer fc.Close()
	for _, cl := range sortedClients(targets) {
		t := targets[cl]
		out = append(out, dirChecks(sftpFS{fc}, p.Backend, itemName(cl, t.Path), t.Path)...)
	}
	return out
}

func sortedClients(m map[string]target.Target) []string { return slices.Sorted(maps.Keys(m)) }

// dirFS is what the directory checks need of a local or an sftp file system.
type dirFS interface {
	Stat(p string) (fs.FileInfo, error)
	ReadDir(p string) ([]fs.FileInfo, error)
	Create(p string) (io.WriteCloser, error)
	Remove(p string) error
}

type localFS struct{}

func (localFS) Stat(p string) (fs.FileInfo, error) { return os.Stat(p) }
func (localFS) ReadDir(p string) ([]fs.FileInfo, error) {
	es, err := os.ReadDir(p)
	var out []fs.FileInfo
	for _, e := range es {
		if fi, err := e.Info(); err == nil {
			out = append(out, fi)
		}
	}
	return out, err
}
func (localFS) Create(p string) (io.WriteCloser, error) {
	return os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
}
func (localFS) Remove(p string) error { return os.Remove(p) }

type sftpFS struct{ c *sftp.Client }

func (s sftpFS) Stat(p string) (fs.FileInfo, error)      { return s.c.Stat(p) }
func (s sftpFS) ReadDir(p string) ([]fs.FileInfo, error) { return s.c.ReadDir(p) }
func (s sftpFS) Create(p string) (io.WriteCloser, error) {
	return s.c.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY)
}
func (s sftpFS) Remove(p string) error { return s.c.Remove(p) }

// dirChecks checks that dir (or, while it does not exist, its nearest
// existing parent) is writable, and what repository it holds.
func dirChecks(f dirFS, backend, item, dir string) []Result {
	probeDir, exists := dir, true
	for {
		fi, err := f.Stat(probeDir)
		if err == nil {
			if !fi.IsDir() {
				return []Result{{Check: "writable", Item: item, Err: fmt.Errorf("%s is not a directory", probeDir)}}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return []Result{{Check: "writable", Item: item, Err: err}}
		}
		exists = false
		parent := path.Dir(probeDir)
		if parent == probeDir {
			return []Result{{Check: "writable", Item: item, Err: fmt.Errorf("no part of %s exists", dir)}}
		}
		probeDir = parent
	}
	name := path.Join(probeDir, fmt.Sprintf(".hostctl-check-%d", time.Now().UnixNano()))
	w, err := f.Create(name)
	if err == nil {
		_, err = w.Write([]byte("hostctl check\n"))
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if rerr := f.Remove(name); err == nil {
			err = rerr
		}
	}
	if err != nil {
		return []Result{{Check: "writable", Item: item, Err: fmt.Errorf("cannot write in %s: %w", probeDir, err)}}
	}
	wr := Result{Check: "writable", Item: item, Detail: "wrote and removed a test file"}
	if !exists {
		wr.Detail = fmt.Sprintf("%s does not exist yet; %s is writable", dir, probeDir)
		return []Result{wr, {Check: "repository", Item: item, Detail: "none yet: the first backup initialises it"}}
	}
	return []Result{wr, repoCheck(f, backend, item, dir)}
}

// repoCheck looks for the backend's repository files in dir.
func repoCheck(f dirFS, backend, item, dir string) Result {
	ents, err := f.ReadDir(dir)
	if err != nil {
		return Result{Check: "repository", Item: item, Err: err}
	}
	names := map[string]fs.FileInfo{}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".hostctl-check-") {
			names[e.Name()] = e
		}
	}
	r := Result{Check: "repository", Item: item}
	switch {
	case len(names) == 0:
		r.Detail = "empty: the first backup initialises it"
	case backend == "borg" && names["config"] != nil && names["data"] != nil:
		r.Detail = "borg repository"
	case backend == "restic" && names["config"] != nil && names["keys"] != nil:
		r.Detail = "restic repository"
	case backend == "duplicity":
		n := 0
		for k := range names {
			if strings.HasPrefix(k, "duplicity-") {
				n++
			}
		}
		if n == 0 {
			r.Err = fmt.Errorf("%d other file(s) and no duplicity archive: is this the right directory?", len(names))
		} else {
			r.Detail = fmt.Sprintf("%d duplicity file(s)", n)
		}
	default:
		r.Err = fmt.Errorf("%d file(s) but no %s repository: %s would refuse it", len(names), backend, backend)
	}
	return r
}

// gatewayHost maps the appliance's gateway to 127.0.0.1.
func gatewayHost(host, gateway string) string {
	if host == gateway {
		return "127.0.0.1"
	}
	return host
}

// probeS3 asks the endpoint for the bucket with an unsigned HEAD: any HTTP
// answer means reachable (the credentials are checked by the first backup).
func probeS3(ctx context.Context, p *config.Profile, t target.Target, gateway string) Result {
	bucket := t.Host
	ep := p.S3.Endpoint
	if ep == "" {
		region := p.S3.Region
		if region == "" {
			region = "us-east-1"
		}
		ep = "https://s3." + region + ".amazonaws.com"
	}
	eu, err := url.Parse(ep)
	if err != nil {
		return Result{Check: "reachable", Item: ep, Err: err}
	}
	if port := eu.Port(); port != "" {
		eu.Host = net.JoinHostPort(gatewayHost(eu.Hostname(), gateway), port)
	} else {
		eu.Host = gatewayHost(eu.Hostname(), gateway)
	}
	if p.S3.PathStyle {
		eu.Path = "/" + bucket
	} else {
		eu.Host = bucket + "." + eu.Host
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, eu.String(), nil)
	if err != nil {
		return Result{Check: "reachable", Item: ep, Err: err}
	}
	resp, err := (&http.Client{Timeout: DialTimeout}).Do(req)
	if err != nil {
		return Result{Check: "reachable", Item: eu.String(), Err: err}
	}
	resp.Body.Close()
	return Result{Check: "reachable", Item: eu.String(), Detail: fmt.Sprintf("HTTP %s (unsigned request; the credentials are checked by the first backup)", resp.Status)}
}

// probeFTP connects and reads the server's greeting.
func probeFTP(ctx context.Context, t target.Target, gateway string) Result {
	conn, addr, err := dialTarget(ctx, t, gateway)
	if err != nil {
		return Result{Check: "reachable", Item: addr, Err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(DialTimeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "220") {
		return Result{Check: "reachable", Item: addr, Err: fmt.Errorf("no ftp greeting: %q %v", strings.TrimSpace(line), err)}
	}
	return Result{Check: "reachable", Item: addr, Detail: strings.TrimSpace(line)}
}

// probeTCP connects to the target's server (ftps: implicit TLS, whose
// greeting comes only after a handshake with the certificate the
// appliance's lftp checks).
func probeTCP(ctx context.Context, t target.Target, gateway string) Result {
	conn, addr, err := dialTarget(ctx, t, gateway)
	if err != nil {
		return Result{Check: "reachable", Item: addr, Err: err}
	}
	conn.Close()
	return Result{Check: "reachable", Item: addr, Detail: "connected (the login is checked by the first backup)"}
}

// dialTarget connects to the target's host and port (the scheme's default
// when it names none).
func dialTarget(ctx context.Context, t target.Target, gateway string) (net.Conn, string, error) {
	addr := net.JoinHostPort(gatewayHost(t.Host, gateway), strconv.Itoa(t.PortOrDefault()))
	d := net.Dialer{Timeout: DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	return conn, addr, err
}
