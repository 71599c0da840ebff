package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// noSuchSnapshot is the name the append-only probes delete: a snapshot
// file no repository has (restic names files by the SHA-256 of their
// content), so a server that does delete removes nothing.
var noSuchSnapshot = strings.Repeat("0", 64)

// restServer is one REST server as a client reaches it from this host:
// its certificate pinned, one user and password.
type restServer struct {
	http       *http.Client
	base       url.URL // https://host:port, dialled on 127.0.0.1 for the gateway
	user, pass string
	item       string // host:port as the appliance reaches it
}

// newRESTServer connects to t's server (on port, the target's when 0)
// trusting only the certificate in caFile, as the appliance does.
func newRESTServer(t target.Target, port int, passFile, caFile, gateway string) (*restServer, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	pass, err := os.ReadFile(passFile)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		port = t.PortOrDefault()
	}
	tr := &http.Transport{
		Proxy:             nil, // the appliance goes to the server directly
		DisableKeepAlives: true,
		// The name the appliance checks, though this host dials the
		// gateway as 127.0.0.1.
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: t.Host, MinVersion: tls.VersionTLS12},
	}
	return &restServer{
		http: &http.Client{Transport: tr, Timeout: DialTimeout},
		base: url.URL{Scheme: "https", Host: net.JoinHostPort(gatewayHost(t.Host, gateway), strconv.Itoa(port))},
		user: t.User, pass: strings.TrimRight(string(pass), "\r\n"),
		item: net.JoinHostPort(t.Host, strconv.Itoa(port)),
	}, nil
}

// do sends one request for the file at p and returns the HTTP status.
func (s *restServer) do(ctx context.Context, method, p string) (int, error) {
	u := s.base
	u.Path = p
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(s.user, s.pass)
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// probeREST checks a rest:// target for each client: the server reached
// with the pinned certificate, the user's password accepted, the
// repository there (or none yet); for an append-only profile that the
// server refuses a deletion, and that the maintenance server (its
// password, its port) accepts one.
func probeREST(ctx context.Context, p *config.Profile, targets map[string]target.Target, gateway string) []Result {
	var out []Result
	for _, cl := range sortedClients(targets) {
		t := targets[cl]
		s, err := newRESTServer(t, 0, p.REST.PasswordFile, p.REST.CAFile, gateway)
		if err != nil {
			return append(out, Result{Check: "keys", Item: itemName(cl, t.Path), Err: err})
		}
		item := itemName(cl, s.item+t.Path)
		code, err := s.do(ctx, http.MethodHead, path.Join(t.Path, "config"))
		switch {
		case err != nil:
			out = append(out, Result{Check: "reachable", Item: item, Err: err})
			continue
		case code == http.StatusOK:
			out = append(out, Result{Check: "authenticated", Item: item, Detail: "as " + t.User + " with " + p.REST.PasswordFile + "; certificate matches " + p.REST.CAFile},
				Result{Check: "repository", Item: item, Detail: "restic repository"})
		case code == http.StatusNotFound:
			out = append(out, Result{Check: "authenticated", Item: item, Detail: "as " + t.User + " with " + p.REST.PasswordFile + "; certificate matches " + p.REST.CAFile},
				Result{Check: "repository", Item: item, Detail: "none yet: the first backup creates it"})
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			out = append(out, Result{Check: "authenticated", Item: item, Err: fmt.Errorf("HTTP %d: the server refuses user %s with %s, or (--private-repos) the path does not start with /%s", code, t.User, p.REST.PasswordFile, t.User)})
			continue
		default:
			out = append(out, Result{Check: "authenticated", Item: item, Err: fmt.Errorf("HTTP %d from the REST server", code)})
			continue
		}
		if !p.AppendOnly {
			continue
		}
		out = append(out, deleteProbe(ctx, s, "append-only", item, t.Path, false))
		if m := p.Maintenance; m.PasswordFile != "" && m.Port != 0 {
			ms, err := newRESTServer(t, m.Port, m.PasswordFile, p.REST.CAFile, gateway)
			if err != nil {
				out = append(out, Result{Check: "prune key", Item: m.PasswordFile, Err: err})
				continue
			}
			out = append(out, deleteProbe(ctx, ms, "prune key", itemName(cl, ms.item+t.Path), t.Path, true))
		}
	}
	return out
}

// deleteProbe deletes noSuchSnapshot from the repository at dir: the
// backup server must refuse it (HTTP 403, rest-server --append-only), the
// maintenance server must do it.
func deleteProbe(ctx context.Context, s *restServer, check, item, dir string, mayDelete bool) Result {
	r := Result{Check: check, Item: item}
	code, err := s.do(ctx, http.MethodDelete, path.Join(dir, "snapshots", noSuchSnapshot))
	switch {
	case err != nil:
		r.Err = err
	case code == http.StatusUnauthorized:
		r.Err = fmt.Errorf("HTTP 401: the server refuses user %s with this password", s.user)
	case mayDelete && code == http.StatusOK:
		r.Detail = "as " + s.user + ": deletes (a snapshot no repository has): hostctl prune can apply the retention"
	case mayDelete && code == http.StatusForbidden:
		r.Err = fmt.Errorf("HTTP 403: this server refuses deletions too: run the maintenance rest-server without --append-only")
	case !mayDelete && code == http.StatusForbidden:
		r.Detail = "the server refuses deletions (HTTP 403: rest-server --append-only)"
	case !mayDelete && code == http.StatusOK:
		r.Err = fmt.Errorf("the server deleted (a snapshot no repository has) for the backup password: it does not run with --append-only")
	default:
		r.Err = fmt.Errorf("HTTP %d to a DELETE", code)
	}
	return r
}

// crossReadREST is the "isolation" row of a rest:// profile: client a's
// user and password ask for the config of the repository at dir, another
// client's. Refused (HTTP 401 or 403: --private-repos) is OK; an answer
// (the config, or 404: none there yet, but a's user could write one) is
// a failure.
func crossReadREST(ctx context.Context, a *config.Profile, t target.Target, gateway, item, dir string) Result {
	r := Result{Check: "isolation", Item: item}
	s, err := newRESTServer(t, 0, a.REST.PasswordFile, a.REST.CAFile, gateway)
	if err != nil {
		r.Err = err
		return r
	}
	code, err := s.do(ctx, http.MethodHead, path.Join(dir, "config"))
	switch {
	case err != nil:
		r.Err = err
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		r.Detail = fmt.Sprintf("the server refuses user %s there (HTTP %d: --private-repos)", t.User, code)
	case code == http.StatusOK || code == http.StatusNotFound:
		r.Err = fmt.Errorf("user %s reaches %s (HTTP %d): run rest-server with --private-repos and give each client its own user (rest://{client}@…/{client})", t.User, dir, code)
	default:
		r.Err = fmt.Errorf("HTTP %d", code)
	}
	return r
}
