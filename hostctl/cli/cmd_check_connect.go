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
func checkConnect(ctx context.Context, cfg *config.Config, clients []*config.Client, hv virt.Hypervisor, hvErr error, limit time.Duration) []connectRow {
	var rows []connectRow
	users := map[string][]string{}
	var order []*config.Profile
	for _, cl := range clients {
		p := cfg.ProfileFor(cl)
		if p == nil {
			continue
		}
		if _, ok := users[p.Name]; !ok {
			order = append(order, p)
		}
		users[p.Name] = append(users[p.Name], cl.Name)
	}
	probe := func(what string, p *config.Profile, users []string) {
		for _, r := range probe.CheckKeys(ctx, p) {
			rows = append(rows, fromResult(what, r))
		}
		pctx, cancel := context.WithTimeout(ctx, limit)
		for _, r := range probe.Target(pctx, p, users, cfg.Host.Network.Gateway) {
			rows = append(rows, fromResult(what, r))
		}
		cancel()
	}
	for _, p := range order {
		if !p.PerClient() {
			probe("profile "+p.Name, p, users[p.Name])
			continue
		}
		// Each client has its own keys: each is checked, and logs in, with its own.
		for _, c := range users[p.Name] {
			probe(fmt.Sprintf("profile %s (client %s)", p.Name, c), p.ForClient(c), []string{c})
		}
	}
	for _, cl := range clients {
		rows = append(rows, clientRows(ctx, cl, hv, hvErr, limit)...)
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
