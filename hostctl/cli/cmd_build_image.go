package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/image"
	"github.com/snapshot-backup/snapshot-backup/internal/units"
	"github.com/snapshot-backup/snapshot-backup/rootfs"
)

// buildImageOptions are build-image's flags.
type buildImageOptions struct {
	Kernel     string
	Supervisor string
	Out        string
	Cache      string
	Suite      string
	Mirror     string
	Security   string
	Force      bool
	Verbose    bool
	// RescueDomain names the persistent libvirt domain that boots the
	// image into the rescue shell; "" defines none.
	RescueDomain string
}

func (o *buildImageOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Kernel, "kernel", "", "kernel to boot (default: newest /boot/vmlinuz-* with modules in /lib/modules)")
	f.StringVar(&o.Supervisor, "supervisor", "", "static supervisor binary (default: 'supervisor' next to hostctl)")
	f.StringVar(&o.Out, "out", "", "output directory (default: image_dir of the config, else "+config.DefaultStateDir+"/image)")
	f.StringVar(&o.Cache, "cache", "", "rootfs cache directory (default: <state_dir>/cache)")
	f.StringVar(&o.Suite, "suite", "", "Debian suite of the userland (default: the host's)")
	f.StringVar(&o.Mirror, "mirror", "", "Debian archive URI (default: the host's APT sources)")
	f.StringVar(&o.Security, "security-mirror", "", "Debian security archive URI (default: the host's APT sources)")
	f.BoolVar(&o.Force, "force", false, "rebuild everything, the userland included (e.g. for security updates)")
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "show mmdebstrap's and mksquashfs's output")
	f.StringVar(&o.RescueDomain, "rescue-domain", RescueDomain, `persistent libvirt domain booting the image into the rescue shell ("" for none)`)
}

func newBuildImageCmd(g *Globals) *cobra.Command {
	o := &buildImageOptions{}
	c := &cobra.Command{
		Use:   "build-image",
		Short: "Build the backup appliance image (kernel, initramfs, disk with the userland)",
		Long: `build-image builds the backup appliance from this host's Debian kernel, the
supervisor binary and a Debian userland made with mmdebstrap (needs the packages
mmdebstrap and squashfs-tools, and the host's Debian mirror).

Output: appliance.img (GPT: ESP + squashfs root), vmlinuz, initramfs.img and
manifest.json in the output directory. The userland is cached by content hash;
a rebuild with nothing changed returns in seconds.

` + exitCodeHelp,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBuildImage(cmd.Context(), g, o)
		},
	}
	o.AddFlags(c.Flags())
	return c
}

func runBuildImage(ctx context.Context, g *Globals, o *buildImageOptions) error {
	out, cache, err := imageDirs(g, o)
	if err != nil {
		return err
	}
	sup, err := supervisorPath(o.Supervisor)
	if err != nil {
		return err
	}
	opts := image.Options{
		KernelPath:     o.Kernel,
		SupervisorPath: sup,
		OutDir:         out,
		CacheDir:       cache,
		Suite:          o.Suite,
		Mirrors:        rootfs.Mirrors{Archive: o.Mirror, Security: o.Security},
		Force:          o.Force,
		Progress:       g.Stderr,
	}
	if o.Verbose {
		opts.ToolLog = g.Stderr
	}
	start := time.Now()
	m, err := image.Build(ctx, opts)
	if err != nil {
		return err
	}
	printImageSummary(g.Stdout, out, m, time.Since(start))
	if o.RescueDomain == "" {
		return nil
	}
	uri := config.DefaultLibvirtURI
	if cfg, err := config.Load(g.ConfigPath); err == nil {
		uri = cfg.Host.LibvirtURI
	}
	if err := defineRescueDomain(ctx, uri, o.RescueDomain, out); err != nil {
		return fmt.Errorf("image built, but defining the rescue domain failed: %w", err)
	}
	fmt.Fprintf(g.Stdout, "  rescue     libvirt domain %s: virsh start %s && virsh console %s\n", o.RescueDomain, o.RescueDomain, o.RescueDomain)
	return nil
}

// imageDirs picks the output and cache directories: flags first, then the
// host config, then the defaults below DefaultStateDir when there is no
// config file at all.
func imageDirs(g *Globals, o *buildImageOptions) (out, cache string, err error) {
	out, cache = o.Out, o.Cache
	if out != "" && cache != "" {
		return out, cache, nil
	}
	stateDir := config.DefaultStateDir
	imageDir := ""
	// No config file yet is normal: build-image typically runs before the
	// host is configured. Checked here so it does not depend on how Load
	// words that case.
	if _, serr := os.Stat(g.ConfigPath); serr == nil {
		cfg, err := config.Load(g.ConfigPath)
		switch {
		case err == nil:
			if cfg.Host.StateDir != "" {
				stateDir = cfg.Host.StateDir
			}
			imageDir = cfg.Host.ImageDir
		case errors.Is(err, fs.ErrNotExist):
		default:
			return "", "", &UsageError{fmt.Errorf("%w (or give --out and --cache)", err)}
		}
	} else if !errors.Is(serr, fs.ErrNotExist) {
		return "", "", &UsageError{fmt.Errorf("host config: %w", serr)}
	}
	if imageDir == "" {
		imageDir = filepath.Join(stateDir, "image")
	}
	if out == "" {
		out = imageDir
	}
	if cache == "" {
		cache = filepath.Join(stateDir, "cache")
	}
	return out, cache, nil
}

// supervisorPath returns the supervisor binary to use: the flag, else
// "supervisor" next to the running hostctl.
func supervisorPath(flag string) (string, error) {
	p := flag
	if p == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("find the supervisor next to hostctl: %w", err)
		}
		p = filepath.Join(filepath.Dir(exe), "supervisor")
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", &UsageError{fmt.Errorf("supervisor binary %s: %w; build it with\n  CGO_ENABLED=0 go build -o %s ./supervisor\nor pass --supervisor PATH", p, err, p)}
	}
	if !st.Mode().IsRegular() {
		return "", &UsageError{fmt.Errorf("supervisor binary %s: not a regular file", p)}
	}
	return p, nil
}

func printImageSummary(w io.Writer, out string, m *image.Manifest, took time.Duration) {
	var state string
	switch {
	case m.CacheHit:
		state = "up to date (cache hit, nothing rebuilt)"
	case m.RootfsCacheHit:
		state = "built (userland from cache)"
	default:
		state = "built (userland rebuilt)"
	}
	fmt.Fprintf(w, "appliance image %s in %s\n", state, took.Round(100*time.Millisecond))
	fmt.Fprintf(w, "  directory  %s\n", out)
	fmt.Fprintf(w, "  version    kernel %s, userland %s\n", m.KernelVersion, m.RootfsInfo.Suite)
	for _, f := range []struct {
		label string
		info  image.FileInfo
	}{{"image", m.Image}, {"kernel", m.Kernel}, {"initramfs", m.Initramfs}, {"rootfs", m.Rootfs}} {
		fmt.Fprintf(w, "  %-10s %s  %s  sha256 %s\n", f.label, f.info.Name, units.Bytes(f.info.Size), f.info.SHA256)
	}
	fmt.Fprintf(w, "  modules    %d, rootfs key %.16s, input hash %.16s\n", len(m.Modules), m.Inputs.RootfsKey, m.InputHash)
}
