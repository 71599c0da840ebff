package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
	"github.com/snapshot-backup/snapshot-backup/internal/units"
)

// DiskResolver finds the disks of a client (for lvm_libvirt: the block and
// file disks of its domain), so that check can show what would be
// snapshotted. The strings are shown as they are, one per line.
type DiskResolver interface {
	ClientDisks(ctx context.Context, c *config.Client) ([]string, error)
}

type checkOptions struct {
	// Disks resolves client disks; nil means check does not look them up
	// (tests set a fake; the command uses libvirt when it answers).
	Disks DiskResolver
	// Offline skips libvirt: only the configuration is checked.
	Offline bool
	// Connect also tests targets, keys, domains and disks (a table).
	Connect bool
	// ConnectTimeout bounds each target's checks.
	ConnectTimeout time.Duration
}

func newCheckCmd(g *Globals) *cobra.Command {
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check [CLIENT...]",
		Short: "Validate the configuration and show what would be backed up",
		Long: `check loads the host configuration, the profiles and the clients, reports
every problem (one per line, as FILE:LINE: key "…": what is wrong) and, when
there is none, prints per client what a run would back up: domain, profile,
backend, target, encryption, retention (the backend's own commands, as the
appliance runs them after an ok backup), filesystem, paths, time limit and
hooks. With CLIENT arguments only those clients are shown. check changes
nothing.

--connect also tests, from this host, each profile the clients use and each
client, and prints a table with one row per check, OK or FAIL and why:
  keys           gpg key files hold the recipients and the signing secret
                 key; the ssh identity parses; the passphrase file is there
  reachable      the target answers (sftp/ssh: TCP + ssh handshake; s3: an
                 HTTP HEAD; ftp: the greeting)
  host key       the server's key matches ssh.known_hosts
  authenticated  the identity logs in
  writable       a test file can be written and removed in each client's
                 directory (or its nearest existing parent)
  repository     the directory holds the backend's repository, or is empty
                 (the first backup initialises it)
  domain, disk   the client's libvirt domain exists and its disks are there
Each target's checks give up after --timeout. A target on the appliance's
gateway (10.0.2.2) is this host and is reached on 127.0.0.1. Exit code 1 when
a row fails.

` + exitCodeHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), g, opts, args)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func (o *checkOptions) AddFlags(f *pflag.FlagSet) {
	f.BoolVar(&o.Offline, "offline", false, "do not ask libvirt for the clients' disks")
	f.BoolVar(&o.Connect, "connect", false, "also connect to every target and check keys, domains and disks (a table of OK/FAIL rows)")
	f.DurationVar(&o.ConnectTimeout, "timeout", 30*time.Second, "with --connect: time limit of each target's checks")
}

func runCheck(ctx context.Context, g *Globals, opts checkOptions, names []string) error {
	cfg, clients, err := g.LoadClients(names)
	if err != nil {
		return err
	}
	if err := cfg.HostChecks(runtime.NumCPU()); err != nil {
		return &UsageError{err}
	}
	disks := opts.Disks
	var hv virt.Hypervisor
	var hvErr error
	if disks == nil && (!opts.Offline || opts.Connect) {
		lv, err := virt.NewLibvirt(cfg.Host.LibvirtURI)
		if err != nil {
			hvErr = err
			fmt.Fprintf(g.Stderr, "hostctl: disks not resolved: %v\n", err)
		} else {
			defer lv.Close()
			hv = lv
			if !opts.Offline {
				disks = libvirtDisks{lv}
			}
		}
	}
	planErr := printPlan(ctx, g.Stdout, cfg, clients, disks)
	if !opts.Connect {
		return planErr
	}
	rows := checkConnect(ctx, cfg, clients, hv, hvErr, opts.ConnectTimeout)
	failed, err := printConnectTable(g.Stdout, rows)
	if err != nil {
		return err
	}
	if failed > 0 {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%d of %d checks failed", failed, len(rows))}
	}
	fmt.Fprintf(g.Stdout, "\nall %d checks passed\n", len(rows))
	return planErr
}

// libvirtDisks resolves a client's disks from its domain XML.
type libvirtDisks struct{ hv virt.Hypervisor }

func (l libvirtDisks) ClientDisks(ctx context.Context, c *config.Client) ([]string, error) {
	x, running, err := l.hv.DomainXML(ctx, c.Domain)
	if err != nil {
		return nil, err
	}
	disks, err := virt.ClientDisks(x)
	if err != nil {
		return nil, err
	}
	state := "shut off"
	if running {
		state = "running: live snapshot"
	}
	var out []string
	for _, d := range disks {
		out = append(out, fmt.Sprintf("%s %s (%s, %s)", d.Target, d.Path, d.Format, state))
	}
	return out, nil
}

// runDirNote says whether the run dir, which holds the job disks with
// their secrets, is on a tmpfs.
func runDirNote(dir string) string {
	mem, err := runner.InMemory(dir)
	switch {
	case err != nil:
		return fmt.Sprintf("%s (%v)", dir, err)
	case mem:
		return dir + " (tmpfs: job disks and their secrets stay in memory)"
	default:
		return dir + " (WARNING: not a tmpfs: job disks with the clients' secrets are written to a disk; mount a tmpfs there or set run_dir to one)"
	}
}

// minFreeNote is min_free_space and what the state dir has now.
func minFreeNote(h config.Host) string {
	if h.MinFreeSpace <= 0 {
		return "0 (not checked)"
	}
	s := fmt.Sprintf("%s in the state dir before a snapshot", h.MinFreeSpace)
	// A state dir the first run will create: its nearest parent's
	// filesystem.
	dir, made := h.StateDir, ""
	for dir != "/" && dir != "." {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		dir = filepath.Dir(dir)
		made = " on " + dir + ": the state dir does not exist yet"
	}
	if free, err := runner.FreeSpace(dir); err == nil {
		s += fmt.Sprintf(" (%s free now%s)", units.Bytes(free), made)
	}
	return s
}

// printPlan shows what a run would do for clients. disks may be nil: the
// disks are then shown as not resolved. A client whose disks cannot be
// resolved is shown with the error, and printPlan returns an error after
// all clients are shown.
func printPlan(ctx context.Context, w io.Writer, cfg *config.Config, clients []*config.Resolved, disks DiskResolver) error {
	p := &planPrinter{w: w}
	h := cfg.Host
	p.title("host config %s", cfg.Path)
	p.field("libvirt", h.LibvirtURI)
	p.field("state dir", h.StateDir)
	p.field("min free", minFreeNote(h))
	p.field("run dir", runDirNote(h.RunDir))
	p.field("image dir", h.ImageDir)
	p.field("appliance", fmt.Sprintf("%d MiB, %d vCPUs, accel %s", h.Appliance.MemoryMiB, h.Appliance.VCPUs, h.Appliance.Accel))
	p.cacheFields(cfg)
	p.field("priority", fmt.Sprintf("nice %d, ionice %s", h.Nice, h.IONice))
	p.field("profiles", h.ProfilesDir)
	p.field("clients", h.ClientsDir)

	failed := 0
	for _, cl := range clients {
		if err := p.client(ctx, cfg, cl, disks); err != nil {
			failed++
		}
	}
	fmt.Fprintln(w)
	if len(cfg.Clients) == 0 {
		fmt.Fprintf(w, "no clients: nothing would be backed up (add clients/NAME.toml in %s)\n", h.ClientsDir)
	} else {
		fmt.Fprintf(w, "%s, %s: configuration OK\n", plural(len(clients), "client"), plural(len(cfg.Profiles), "profile"))
	}
	if p.err != nil {
		return fmt.Errorf("write: %w", p.err)
	}
	if failed > 0 {
		return fmt.Errorf("the disks of %s could not be resolved", plural(failed, "client"))
	}
	return nil
}

func (p *planPrinter) client(ctx context.Context, cfg *config.Config, cl *config.Resolved, disks DiskResolver) error {
	p.title("client %s (%s)", cl.Name, cl.File)
	p.field("type", cl.Type)
	if d := cl.Describe(); d != "" {
		p.field("backs up", d)
	} else {
		domain := cl.Domain
		if cl.OfflineOK != nil && !*cl.OfflineOK {
			domain += " (skipped when shut off)"
		}
		p.field("domain", domain)
	}
	dests := cl.Destinations()
	for i, d := range dests {
		if len(dests) > 1 {
			p.field("destination", fmt.Sprintf("%d of %d (one appliance boot backs up to each in turn; list, restore and verify take --profile %s)", i+1, len(dests), d.Profile.Name))
		}
		p.destination(d)
	}
	p.field("mount", config.MountDesc(cl.Tree))
	p.field("source", cl.Backup.Source...)
	if len(cl.Backup.Exclude) == 0 {
		p.field("exclude", "nothing")
	} else {
		p.field("exclude", cl.Backup.Exclude...)
	}
	p.field("time limit", fmtDuration(cl.TimeLimit.Duration))
	p.field("cache", cacheDesc(cfg.CacheFor(cl.Name)))
	if d := hooksDesc(cl.Client); d != "" {
		p.field("hooks", d)
	}
	if cl.Type != config.TypeLVMLibvirt {
		return nil // no libvirt domain, no disks to resolve
	}
	if disks == nil {
		p.field("disks", "not resolved (check does not ask libvirt)")
		return nil
	}
	ds, err := disks.ClientDisks(ctx, cl.Client)
	if err != nil {
		p.field("disks", "error: "+err.Error())
		return err
	}
	if len(ds) == 0 {
		p.field("disks", "none found")
		return nil
	}
	p.field("disks", ds...)
	return nil
}

// destination describes one of a client's destinations: its profile,
// backend, target (and who may delete there), encryption and retention.
func (p *planPrinter) destination(cl *config.Resolved) {
	prof := cl.Profile // its secret files as this client's job gets them
	from := ""
	if cl.Client.Profile == "" && len(cl.Client.Profiles) == 0 {
		from = ", the host's default_profile"
	}
	p.field("profile", fmt.Sprintf("%s (%s%s)", prof.Name, prof.File, from))
	p.field("backend", fmt.Sprintf("%s, compression %s", prof.Backend, prof.Borg.Compression))
	where := cl.Target.String()
	if prof.AppendOnly {
		switch cl.Target.Scheme {
		case target.REST:
			where += " (append-only: the REST server must run with --append-only; "
		case target.S3:
			where += " (append-only: the bucket's policy must refuse the key deletions, README \"S3 bucket policy\"; "
		default:
			where += " (append-only: its key runs only borg serve --append-only on this repository; "
		}
		if runner.PruneReady(cl) == "" {
			where += "hostctl prune deletes with " + runner.MaintenanceCredential(cl) + ")"
		} else {
			where += "nothing here deletes: prune on the server)"
		}
	}
	p.field("target", where)
	enc := prof.Encryption.Mode
	if prof.Encryption.PassphraseFile != "" {
		enc += ", passphrase file " + prof.Encryption.PassphraseFile
	}
	p.field("encryption", enc)
	p.field("retention", retentionDesc(cl)...)
}

// cacheFields describes where the clients' cache volumes are, and those a
// client no longer uses: the shared volume of earlier versions, images of
// clients that are gone.
func (p *planPrinter) cacheFields(cfg *config.Config) {
	c := cfg.Host.Cache
	if c.Type == "lvm" {
		p.field("caches", fmt.Sprintf("lvm: one LV per client, %s/%s<client>, %s each", c.VG, config.CacheLVPrefix, c.Size))
		return
	}
	p.field("caches", fmt.Sprintf("file: one image per client, %s, %s each", filepath.Join(c.Dir, "<client>.qcow2"), c.Size))
	var unused []string
	if old := filepath.Join(cfg.Host.StateDir, "cache.qcow2"); fileExists(old) {
		unused = append(unused, old+" (the one cache all clients shared in earlier versions: delete it)")
	}
	imgs, _ := filepath.Glob(filepath.Join(c.Dir, "*.qcow2"))
	for _, img := range imgs {
		if name := strings.TrimSuffix(filepath.Base(img), ".qcow2"); cfg.Clients[name] == nil {
			unused = append(unused, img+" (no client "+name+": delete it when the client is gone for good)")
		}
	}
	if len(unused) > 0 {
		p.field("unused", unused...)
	}
}

// cacheDesc says where a client's cache volume is and whether it exists.
func cacheDesc(cc config.ClientCache) string {
	state := "created by the client's first job"
	if fileExists(cc.Path) {
		state = "exists"
	}
	return fmt.Sprintf("%s (%s, %s), only this client's appliances", cc, config.Size(cc.Size), state)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// planPrinter writes aligned "label: value" blocks and keeps the first
// write error.
type planPrinter struct {
	w   io.Writer
	err error
}

func (p *planPrinter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *planPrinter) title(format string, args ...any) {
	p.printf("\n"+format+"\n", args...)
}

// field prints label and the first value on one line, further values
// aligned below it.
func (p *planPrinter) field(label string, values ...string) {
	if len(values) == 0 {
		values = []string{""}
	}
	p.printf("  %-12s %s\n", label+":", values[0])
	for _, v := range values[1:] {
		p.printf("  %-12s %s\n", "", v)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// fmtDuration writes 2h instead of 2h0m0s.
// hooksDesc says which snapshot hooks run, where and how; "" when none.
func hooksDesc(cl *config.Client) string {
	h := cl.Hooks
	var names []string
	for _, n := range []struct{ name, cmd string }{{"pre_snapshot", h.PreSnapshot}, {"on_snapshot", h.OnSnapshot}, {"post_snapshot", h.PostSnapshot}} {
		if n.cmd != "" {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 && !h.Freeze {
		return ""
	}
	var where string
	switch h.Transport {
	case config.TransportSSH:
		where = fmt.Sprintf("over ssh %s@%s", h.SSH.User, h.SSH.Host)
		if h.SSH.Port != 0 {
			where += fmt.Sprintf(":%d", h.SSH.Port)
		}
		if h.SSH.KnownHosts != "" {
			where += ", host key pinned in " + h.SSH.KnownHosts
		}
	case config.TransportLocal:
		where = "on this host"
	default:
		where = "through the guest agent"
	}
	d := "none"
	if len(names) > 0 {
		d = strings.Join(names, ", ")
	}
	d += " " + where + ", each within " + fmtDuration(h.TimeLimit.Duration)
	if h.Freeze {
		d += ", filesystems frozen around the snapshot"
	}
	return d
}

func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
