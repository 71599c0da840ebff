package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/probe"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// connectRow is one line of the check --connect table.
type connectRow struct {
	what, check string
	err         error
	detail      string
}

// checkConnect tests, from this host, every profile the clients use
// (keys, target reachable, authenticated, writable, repository) and every
// client's domain and disks. Each check is bounded by limit.
func checkConnect(ctx context.Context, cfg *config.Config, clients []*config.Resolved, hv virt.Hypervisor, hvErr error, limit time.Duration) []connectRow {
	var rows []connectRow
	users := map[string][]*config.Resolved{}
	var order []string
	for _, cl := range clients {
		name := cl.Profile.Name
		if _, ok := users[name]; !ok {
			order = append(order, name)
		}
		users[name] = append(users[name], cl)
	}
	probeProfile := func(what string, p *config.Profile, users []*config.Resolved) {
		for _, r := range probe.CheckKeys(ctx, p) {
			rows = append(rows, fromResult(what, r))
		}
		targets := map[string]target.Target{}
		for _, cl := range users {
			targets[cl.Name] = cl.Target
		}
		pctx, cancel := context.WithTimeout(ctx, limit)
		for _, r := range probe.Target(pctx, p, targets, cfg.Host.Network.Gateway) {
			rows = append(rows, fromResult(what, r))
		}
		cancel()
	}
	for _, name := range order {
		us := users[name]
		// Without {client} in its secret files every client's profile is
		// the same; with it, each client has its own keys: each is
		// checked, and logs in, with its own.
		if !cfg.Profiles[name].PerClient() {
			probeProfile("profile "+name, us[0].Profile, us)
			continue
		}
		for i, c := range us {
			what := fmt.Sprintf("profile %s (client %s)", name, c.Name)
			probeProfile(what, c.Profile, []*config.Resolved{c})
			// One client's credential on the next client's repository.
			// Where the profile means to keep them apart: borg
			// append-only (its forced command), or an account per client
			// (sftp: the accounts and their modes; a REST server:
			// --private-repos).
			separate := c.Profile.AppendOnly && c.Profile.Backend == "borg" ||
				accountPerClient(us) && (c.Target.Scheme.OverSSH() || c.Target.Scheme == target.REST)
			if other := us[(i+1)%len(us)]; other != c && separate {
				pctx, cancel := context.WithTimeout(ctx, limit)
				r := probe.CrossRead(pctx, c.Profile, c.Target, cfg.Host.Network.Gateway, "client "+other.Name+"'s repository "+other.Target.Path, other.Target.Path)
				cancel()
				rows = append(rows, fromResult(what, r))
			}
		}
	}
	for _, cl := range clients {
		rows = append(rows, clientRows(ctx, cl.Client, hv, hvErr, limit)...)
	}
	return rows
}

func fromResult(what string, r probe.Result) connectRow {
	detail := r.Item
	if r.Detail != "" && r.Err == nil {
		detail += ": " + r.Detail
	}
	return connectRow{what: what, check: r.Check, err: r.Err, detail: detail}
}

// clientRows checks that a client's domain and disks (or host LV, or
// paths) are there.
func clientRows(ctx context.Context, cl *config.Client, hv virt.Hypervisor, hvErr error, limit time.Duration) []connectRow {
	what := "client " + cl.Name
	switch cl.Type {
	case config.TypeLVMLibvirt:
		if hv == nil {
			return []connectRow{{what: what, check: "domain", err: fmt.Errorf("libvirt: %v", hvErr)}}
		}
		cctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		x, running, err := hv.DomainXML(cctx, cl.Domain)
		if err != nil {
			return []connectRow{{what: what, check: "domain", err: err, detail: cl.Domain}}
		}
		disks, err := virt.ClientDisks(x)
		state := "shut off"
		if running {
			state = "running"
		}
		rows := []connectRow{{what: what, check: "domain", err: err, detail: fmt.Sprintf("%s: %s, %d disk(s)", cl.Domain, state, len(disks))}}
		if err == nil && len(disks) == 0 {
			rows[0].err = fmt.Errorf("domain %s has no disk to back up", cl.Domain)
		}
		for _, d := range disks {
			rows = append(rows, pathRow(what, "disk "+d.Target, d.Path, d.Format))
		}
		return rows
	case config.TypeLVMHost:
		return []connectRow{pathRow(what, "host LV", "/dev/"+cl.HostDevice, "block")}
	case config.TypeSelf:
		var rows []connectRow
		for _, p := range cl.Paths {
			rows = append(rows, pathRow(what, "path", p, "directory"))
		}
		return rows
	}
	return []connectRow{{what: what, check: cl.Type, detail: "on the appliance's cache volume: nothing to check here"}}
}

func pathRow(what, check, path, kind string) connectRow {
	fi, err := os.Stat(path)
	if err != nil {
		return connectRow{what: what, check: check, err: err}
	}
	detail := fmt.Sprintf("%s (%s", path, kind)
	if fi.Mode().IsRegular() {
		detail += fmt.Sprintf(", %d MiB", fi.Size()>>20)
	}
	return connectRow{what: what, check: check, detail: detail + ")"}
}

// printConnectTable writes the rows as an aligned table and returns how
// many failed.
func printConnectTable(w io.Writer, rows []connectRow) (int, error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCHECKED\tCHECK\tRESULT\tDETAIL")
	failed := 0
	for _, r := range rows {
		status, detail := "OK", r.detail
		if r.err != nil {
			failed++
			status = "FAIL"
			msg := strings.ReplaceAll(r.err.Error(), "\n", " ")
			if detail != "" {
				detail += ": "
			}
			detail += msg
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.what, r.check, status, detail)
	}
	return failed, tw.Flush()
}
