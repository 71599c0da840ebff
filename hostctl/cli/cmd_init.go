package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/keygen"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/profiles"
)

type initOptions struct {
	LibvirtURI string
	Domains    []string // only these domains; all when empty
}

func newInitCmd(g *Globals) *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented starting configuration: host config, default profile, one client per libvirt domain",
		Long: `init writes, next to --config (default /etc/hostctl/hostctl.toml):
  hostctl.toml                      the host configuration, every key commented
  profiles/` + profiles.Default + `.toml            borg repositories in /srv/backup/<client>, encrypted
  clients/<client>.toml             one per libvirt domain, its disks listed
  secrets/` + profiles.Default + `-<client>.passphrase
                                    a new random passphrase per client (mode 0600):
                                    keep a copy elsewhere
Each client has its own passphrase, so that one client's backup appliance
holds no other client's. Existing files are never overwritten: rerunning init
only adds clients (and their passphrases) for new domains; for a client added
by hand, "hostctl keygen passphrase ` + profiles.Default + `" makes its passphrase.
--domain NAME (repeatable) writes clients for those domains only.
Review the files, then run "hostctl check".

` + exitCodeHelp,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(cmd.Context(), g, o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func (o *initOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.LibvirtURI, "libvirt-uri", config.DefaultLibvirtURI, "libvirt connection whose domains become clients")
	f.StringArrayVar(&o.Domains, "domain", nil, "only this libvirt domain becomes a client (repeatable; default all)")
}

// domainSource is what init needs of libvirt.
type domainSource interface {
	ListDomains(ctx context.Context) ([]string, error)
	DomainXML(ctx context.Context, name string) (string, bool, error)
}

func runInit(ctx context.Context, g *Globals, o initOptions) error {
	dir := filepath.Dir(g.ConfigPath)
	lv, err := virt.NewLibvirt(o.LibvirtURI)
	if err != nil {
		return err
	}
	defer lv.Close()
	var src domainSource = lv
	if len(o.Domains) > 0 {
		src = onlyDomains{lv, o.Domains}
	}
	files, err := initFiles(ctx, src, o.LibvirtURI, filepath.Base(g.ConfigPath))
	if err != nil {
		return err
	}
	for _, d := range []string{dir, filepath.Join(dir, "profiles"), filepath.Join(dir, "clients")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	wrote := 0
	for _, n := range names {
		p := filepath.Join(dir, n)
		created, err := writeNew(p, files[n].data, files[n].mode)
		if err != nil {
			return err
		}
		if created {
			wrote++
			fmt.Fprintf(g.Stdout, "wrote  %s\n", p)
		} else {
			fmt.Fprintf(g.Stdout, "kept   %s (exists)\n", p)
		}
	}
	passes, err := initPassphrases(dir, names)
	if err != nil {
		return err
	}
	n, err := makePassphrases(g.Stdout, passes, keygen.Passphrase, "passphrase")
	if err != nil {
		return err
	}
	if wrote += n; n > 0 {
		fmt.Fprintf(g.Stdout, "\nKeep a copy of each new passphrase somewhere else (a password manager, paper):\nwithout it the backups cannot be read.\n")
	}
	fmt.Fprintf(g.Stdout, "\n%d file(s) written. Next: review them, then\n  hostctl --config %s check\n  hostctl --config %s build-image\n", wrote, g.ConfigPath, g.ConfigPath)
	fmt.Fprintf(g.Stdout, "For an offsite profile: hostctl keygen gpg|ssh PROFILE, hostctl target setup PROFILE, hostctl check --connect.\n")
	return nil
}

type initFile struct {
	data []byte
	mode os.FileMode
}

// initFiles renders everything init writes, by path relative to the config
// directory (a pure function of libvirt's answers, for the tests).
func initFiles(ctx context.Context, src domainSource, uri, hostName string) (map[string]initFile, error) {
	host := config.ExampleHost
	if uri != config.DefaultLibvirtURI {
		host = bytes.Replace(host, []byte(`libvirt_uri = "`+config.DefaultLibvirtURI+`"`), []byte(fmt.Sprintf("libvirt_uri = %q", uri)), 1)
	}
	prof, err := fs.ReadFile(profiles.FS, profiles.Default+".toml")
	if err != nil {
		return nil, err
	}
	files := map[string]initFile{
		hostName: {host, 0o644},
		filepath.Join("profiles", profiles.Default+".toml"): {prof, 0o644},
	}
	domains, err := src.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	used := map[string]string{}
	for _, d := range domains {
		if strings.HasPrefix(d, "hostctl-") {
			continue // hostctl's own appliances
		}
		x, running, err := src.DomainXML(ctx, d)
		if err != nil {
			return nil, err
		}
		disks, diskErr := virt.ClientDisks(x)
		name := clientName(d)
		if other, ok := used[name]; ok {
			return nil, fmt.Errorf("domains %q and %q both map to the client name %q: rename one", other, d, name)
		}
		used[name] = d
		data, err := renderClient(clientTemplateData{Name: name, Domain: d, Running: running, Disks: disks, DiskErr: diskErr})
		if err != nil {
			return nil, err
		}
		files[filepath.Join("clients", name+".toml")] = initFile{data, 0o644}
	}
	return files, nil
}

// onlyDomains is a domainSource limited to the named domains, each of
// which must exist.
type onlyDomains struct {
	domainSource
	names []string
}

func (o onlyDomains) ListDomains(ctx context.Context) ([]string, error) {
	all, err := o.domainSource.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range o.names {
		if !slices.Contains(all, n) {
			return nil, &UsageError{fmt.Errorf("--domain %q: libvirt has no such domain", n)}
		}
	}
	return o.names, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// clientName turns a domain name into a valid client name.
func clientName(domain string) string {
	n := strings.Trim(unsafeName.ReplaceAllString(domain, "-"), "-._")
	if n == "" {
		n = "domain"
	}
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

type clientTemplateData struct {
	Name, Domain string
	Running      bool
	Disks        []virt.ClientDisk
	DiskErr      error
}

var clientTemplate = template.Must(template.New("client").Parse(`# clients/{{.Name}}.toml, written by "hostctl init" for the libvirt domain "{{.Domain}}".
# Every key is explained in the example client shipped with hostctl
# (hostctl/config/example/clients/web.toml in the source).
#
{{- if .DiskErr}}
# WARNING: its disks cannot be backed up as they are: {{.DiskErr}}
{{- else}}
# Its disks now, all of which are backed up:
{{- range .Disks}}
#   {{.Target}}  {{.Path}}  ({{if .Block}}block device{{else}}{{.Format}} file{{end}}{{if .ReadOnly}}, read-only{{end}})
{{- end}}
{{- end}}
# The domain is {{if .Running}}running: it is backed up from a live snapshot{{else}}shut off: it is backed up from its disks as they are{{end}}.

type = "lvm_libvirt"
domain = "{{.Domain}}"

# profile = "local-borg"   # default: default_profile of hostctl.toml
# offline_ok = true        # false: skip the backup while the domain is shut off
# time_limit = "6h"        # default: time_limit of hostctl.toml

[backup]
mount = "auto"             # or "vda2", "LABEL=root", "UUID=…"
source = ["/"]
exclude = ["/tmp", "/var/tmp", "/var/cache/apt/archives"]
`))

func renderClient(d clientTemplateData) ([]byte, error) {
	var b bytes.Buffer
	if err := clientTemplate.Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeNew creates p with data unless it exists; it reports whether it did.
func writeNew(p string, data []byte, mode os.FileMode) (bool, error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return false, err
	}
	return true, f.Close()
}

// initPassphrases lists the passphrase files the default profile (as it is
// in dir now: written or kept) names for the clients among files (paths
// relative to dir): one per client with {client}, else the one file.
func initPassphrases(dir string, files []string) ([]string, error) {
	p, err := config.LoadProfileFile(filepath.Join(dir, "profiles", profiles.Default+".toml"))
	if err != nil {
		return nil, err
	}
	pattern := p.Encryption.PassphraseFile
	if pattern == "" {
		return nil, nil
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(dir, pattern)
	}
	if !strings.Contains(pattern, config.ClientPlaceholder) {
		return []string{pattern}, nil
	}
	var out []string
	for _, f := range files {
		rest, inClients := strings.CutPrefix(f, "clients"+string(filepath.Separator))
		if name, ok := strings.CutSuffix(rest, ".toml"); inClients && ok {
			out = append(out, strings.ReplaceAll(pattern, config.ClientPlaceholder, name))
		}
	}
	return out, nil
}
