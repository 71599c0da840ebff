package rootfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
	"github.com/snapshot-backup/snapshot-backup/internal/units"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
)

// DefaultSuite is used when the host's release cannot be read.
const DefaultSuite = "bookworm"

// keepEntries is how many rootfs squashfs files the cache keeps (the current
// one and the previous, so switching back and forth does not rebuild).
const keepEntries = 2

// Options say where and from what the rootfs is produced.
type Options struct {
	CacheDir string // required: rootfs-<key>.sqfs and .json live here
	TmpDir   string // where the install tree is made; "" = os.TempDir()
	Suite    string // Debian codename; "" = the host's (os-release), else DefaultSuite
	// Mirrors override the host's APT sources; empty fields are taken from
	// the host (/etc/apt/sources.list{,.d}).
	Mirrors Mirrors
	Force   bool // rebuild even when the cache has the key
	// Logf receives progress lines; nil = none.
	Logf func(format string, args ...any)
	// Log receives mmdebstrap's and mksquashfs's own output; nil = only kept
	// for error messages.
	Log io.Writer
	// HostRoot is where the host's /etc is read from; "" = "/" (tests set it).
	HostRoot string
	// PackageList replaces the embedded packages.txt (same format) and
	// drops the appliance's overlay: another userland built the same way
	// (the qemu-tests client VM with a guest agent). nil = the appliance.
	PackageList []byte
}

// Plan is a resolved rootfs build: every input and its key. Making one is
// fast and needs no network, so callers can compare keys before building.
type Plan struct {
	Suite    string
	AptLines []string
	Packages []string
	Inputs   KeyInputs
	Key      string
	opts     Options
}

// NewPlan resolves opts against the host and the embedded spec.
func NewPlan(ctx context.Context, opts Options) (*Plan, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("rootfs: no cache directory")
	}
	if opts.HostRoot == "" {
		opts.HostRoot = "/"
	}
	suite := opts.Suite
	if suite == "" {
		s, err := HostSuite(opts.HostRoot)
		if err != nil {
			s = DefaultSuite
		}
		suite = s
	}
	m := opts.Mirrors
	if m.Archive == "" || m.Security == "" {
		host, err := HostMirrors(opts.HostRoot, suite)
		if err != nil && m.Archive == "" {
			return nil, err
		}
		if m.Archive == "" {
			m.Archive = host.Archive
		}
		if m.Security == "" {
			m.Security = host.Security
		}
	}
	pkgFile := PackagesFile()
	if opts.PackageList != nil {
		pkgFile = opts.PackageList
	}
	pkgs, err := ParsePackages(pkgFile)
	if err != nil {
		return nil, err
	}
	var overlay []OverlayFile
	if opts.PackageList == nil {
		if overlay, err = Overlay(); err != nil {
			return nil, err
		}
	}
	tools, err := toolVersions(ctx)
	if err != nil {
		return nil, err
	}
	p := &Plan{Suite: suite, AptLines: AptLines(m, suite), Packages: pkgs, opts: opts}
	p.Inputs = KeyInputs{Packages: pkgFile, Overlay: overlay, Suite: suite, AptLines: p.AptLines, Tools: tools}
	p.Key = Key(p.Inputs)
	return p, nil
}

// toolVersions asks the tools that shape the squashfs for their versions.
func toolVersions(ctx context.Context) (map[string]string, error) {
	tools := map[string]string{}
	for _, t := range []struct{ name, pkg, flag string }{
		{"mmdebstrap", "mmdebstrap", "--version"},
		{"mksquashfs", "squashfs-tools", "-version"},
	} {
		if _, err := exec.LookPath(t.name); err != nil {
			return nil, fmt.Errorf("%s not found (apt-get install %s): %w", t.name, t.pkg, err)
		}
		out, err := execx.Output(ctx, t.name, t.flag)
		if err != nil {
			return nil, fmt.Errorf("%s version: %w", t.name, err)
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		tools[t.name] = strings.TrimSpace(first)
	}
	return tools, nil
}

// Build returns the cached squashfs for the plan's key, or produces it:
// mmdebstrap into a temp tree, overlay, mksquashfs into the cache. A killed
// build leaves no cache entry (temp names, rename last) and the temp tree is
// always removed.
func (p *Plan) Build(ctx context.Context) (*Result, error) {
	opts := p.opts
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("rootfs cache: %w", err)
	}
	unlock, err := fsutil.Lock(filepath.Join(opts.CacheDir, ".rootfs.lock"), func() { logf("waiting for another build using the cache %s", opts.CacheDir) })
	if err != nil {
		return nil, err
	}
	defer unlock()

	if !opts.Force {
		if r := lookup(opts.CacheDir, p.Key); r != nil {
			logf("rootfs: cache hit, key %s… (%s)", p.Key[:12], units.Bytes(r.Size))
			return r, nil
		}
	}
	if err := prune(opts.CacheDir, p.Key, keepEntries); err != nil {
		logf("rootfs: pruning the cache: %v", err)
	}

	start := time.Now()
	tmpDir := opts.TmpDir
	if tmpDir == "" {
		tmpDir = os.TempDir()
	}
	tree, err := os.MkdirTemp(tmpDir, "sb-rootfs-")
	if err != nil {
		return nil, fmt.Errorf("rootfs tree: %w", err)
	}
	defer removeTree(tree, logf)

	logf("rootfs: mmdebstrap %s, %d packages (cache miss, key %s…)", p.Suite, len(p.Packages), p.Key[:12])
	if err := p.mmdebstrap(ctx, tree); err != nil {
		return nil, err
	}
	if err := p.finishTree(tree); err != nil {
		return nil, err
	}
	status, err := os.ReadFile(filepath.Join(tree, "var/lib/dpkg/status"))
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	installed := ParseDpkgStatus(status)
	versions := map[string]string{}
	for _, name := range append(append([]string(nil), p.Packages...), "libc6", "python3", "dpkg") {
		if v, ok := installed[name]; ok {
			versions[name] = v
		} else if name != "python3" {
			return nil, fmt.Errorf("rootfs: package %s is not installed in the tree", name)
		}
	}
	logf("rootfs: %d packages installed (%s), mksquashfs", len(installed), units.Bytes(treeSize(tree)))

	stem := filepath.Join(opts.CacheDir, cacheName(p.Key))
	tmp := filepath.Join(opts.CacheDir, "."+cacheName(p.Key)+".tmp-"+fmt.Sprint(os.Getpid()))
	defer os.Remove(tmp) // no-op after the rename
	if err := p.mksquashfs(ctx, tree, tmp); err != nil {
		return nil, err
	}
	sum, size, err := fsutil.SHA256File(tmp)
	if err != nil {
		return nil, err
	}
	r := &Result{
		Key: p.Key, Size: size, SHA256: sum, Suite: p.Suite, AptLines: p.AptLines,
		Tools: p.Inputs.Tools, Packages: versions,
		Built: time.Now().UTC().Format(time.RFC3339), BuildSeconds: time.Since(start).Seconds(),
	}
	meta, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	// The squashfs first, the json last: the json is what makes an entry.
	if err := os.Rename(tmp, stem+".sqfs"); err != nil {
		return nil, fmt.Errorf("rootfs cache: %w", err)
	}
	if err := fsutil.WriteFileAtomic(stem+".json", append(meta, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("rootfs cache: %w", err)
	}
	r.Path = stem + ".sqfs"
	logf("rootfs: squashfs %s in %.0fs", units.Bytes(size), r.BuildSeconds)
	return r, nil
}

// dpkgExcludes keep documentation out of the appliance (copyright files stay).
var dpkgExcludes = []string{
	"path-exclude=/usr/share/man/*",
	"path-exclude=/usr/share/info/*",
	"path-exclude=/usr/share/doc/*",
	"path-include=/usr/share/doc/*/copyright",
	"path-exclude=/usr/share/locale/*",
	"path-include=/usr/share/locale/locale.alias",
	"path-exclude=/usr/share/lintian/*",
}

func (p *Plan) mmdebstrap(ctx context.Context, tree string) error {
	argv := []string{"mmdebstrap", "--variant=essential", "--include=" + strings.Join(p.Packages, ",")}
	for _, d := range dpkgExcludes {
		argv = append(argv, "--dpkgopt="+d)
	}
	argv = append(argv, p.Suite, tree)
	argv = append(argv, p.AptLines...)
	_, err := execx.Run(ctx, execx.Cmd{
		Argv:   argv,
		Stdout: orDiscard(p.opts.Log),
		Stderr: p.opts.Log,
		// mmdebstrap mounts and unmounts inside the tree; on cancel give it
		// SIGTERM and time to clean up instead of killing it outright.
		Setup: gracefulCancel,
	})
	if err != nil {
		return fmt.Errorf("rootfs: mmdebstrap: %w", err)
	}
	return nil
}

// finishTree lays the overlay over the tree and creates the mount points.
func (p *Plan) finishTree(tree string) error {
	for _, f := range p.Inputs.Overlay {
		dst := filepath.Join(tree, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("overlay %s: %w", f.Path, err)
		}
		// Remove first: the tree may hold a symlink there, which must be
		// replaced, not followed.
		if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("overlay %s: %w", f.Path, err)
		}
		if err := os.WriteFile(dst, f.Data, f.Mode); err != nil {
			return fmt.Errorf("overlay %s: %w", f.Path, err)
		}
		if err := os.Chmod(dst, f.Mode); err != nil { // umask
			return fmt.Errorf("overlay %s: %w", f.Path, err)
		}
	}
	for _, d := range MountPoints {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return fmt.Errorf("mount point /%s: %w", d, err)
		}
	}
	return nil
}

func (p *Plan) mksquashfs(ctx context.Context, tree, out string) error {
	// -mkfs-time fixes the superblock time. File times are kept on purpose
	// (no -all-time): Python checks its .pyc files against the sources'
	// mtimes, and zeroing them would make borg and duplicity recompile on
	// every start. zstd level 3, not mksquashfs's default 15: on the
	// agent VM's 114 MiB tree, 0.6 s of CPU against 17.5 s for a squashfs
	// 15 % larger, and reading it back is as fast.
	argv := []string{"mksquashfs", tree, out, "-comp", "zstd", "-Xcompression-level", "3", "-noappend", "-no-progress",
		"-mkfs-time", "0", "-reproducible"}
	_, err := execx.Run(ctx, execx.Cmd{Argv: argv, Stdout: orDiscard(p.opts.Log), Stderr: p.opts.Log})
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}

func gracefulCancel(c *exec.Cmd) {
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = 30 * time.Second
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// treeSize is the apparent size of the regular files below dir.
func treeSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
