// Package image builds the backup appliance: a kernel (the host's Debian
// kernel), an initramfs holding the supervisor as /init plus exactly the
// kernel modules it needs, and a GPT disk image with an ESP (kernel and
// initramfs) and the rootfs squashfs (see package rootfs) as partition 2.
//
// Build is idempotent and cheap when nothing changed: the rootfs is cached by
// content hash, and a build whose inputs equal those in the output
// directory's manifest returns at once.
package image

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
	"github.com/snapshot-backup/snapshot-backup/internal/units"

	"github.com/google/uuid"

	"github.com/snapshot-backup/snapshot-backup/rootfs"
)

// Options for Build.
type Options struct {
	// KernelPath is the bzImage to boot; "" = the newest BootDir/vmlinuz-*
	// with a matching ModulesRoot/<version>.
	KernelPath string
	// KernelVersion overrides the version taken from KernelPath's name.
	KernelVersion string
	BootDir       string // "" = /boot
	ModulesRoot   string // "" = /lib/modules
	// SupervisorPath is the static supervisor binary; it becomes /init.
	SupervisorPath string
	// OutDir receives appliance.img, vmlinuz, initramfs.img and manifest.json.
	OutDir string
	// CacheDir holds the rootfs squashfs cache (rootfs-<key>.sqfs/.json).
	CacheDir string
	TmpDir   string // for the rootfs install tree; "" = os.TempDir()
	// Suite and Mirrors choose the Debian release and archive of the rootfs;
	// empty = the host's (os-release, APT sources).
	Suite   string
	Mirrors rootfs.Mirrors
	// Force rebuilds everything, the rootfs included (e.g. to pick up
	// security updates of the same package set).
	Force bool
	// Progress receives human progress lines; nil = none.
	Progress io.Writer
	// ToolLog receives mmdebstrap's and mksquashfs's output; nil = none.
	ToolLog io.Writer

	// rootfs replaces the rootfs step (tests).
	rootfs func(ctx context.Context) (*rootfs.Result, error)
	// rootfsKey replaces the rootfs key (tests).
	rootfsKey string
}

// Build builds the appliance into opts.OutDir, or returns the manifest
// already there when its inputs are unchanged (Manifest.CacheHit).
func Build(ctx context.Context, opts Options) (*Manifest, error) {
	start := time.Now()
	p := &progress{w: opts.Progress, start: start}
	if opts.OutDir == "" || opts.CacheDir == "" {
		return nil, errors.New("image: output and cache directories are required")
	}
	if opts.SupervisorPath == "" {
		return nil, errors.New("image: no supervisor binary")
	}
	if opts.BootDir == "" {
		opts.BootDir = "/boot"
	}
	if opts.ModulesRoot == "" {
		opts.ModulesRoot = "/lib/modules"
	}

	kernel, err := FindKernel(opts.BootDir, opts.ModulesRoot, opts.KernelPath, opts.KernelVersion)
	if err != nil {
		return nil, err
	}
	if err := checkStatic(opts.SupervisorPath); err != nil {
		return nil, err
	}
	jobFormat, err := supervisorJobFormat(opts.SupervisorPath)
	if err != nil {
		return nil, err
	}
	kernelInfo, err := hashFile(kernel.Path)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	supInfo, err := hashFile(opts.SupervisorPath)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	supInfo.Name = opts.SupervisorPath
	mods, builtin, err := resolveKernelModules(kernel)
	if err != nil {
		return nil, err
	}
	p.logf("kernel %s (%s), supervisor %s (%s), %d modules", kernel.Version, units.Bytes(kernelInfo.Size),
		opts.SupervisorPath, units.Bytes(supInfo.Size), len(mods.Load))

	runRootfs := opts.rootfs
	rootfsKey := opts.rootfsKey
	if runRootfs == nil {
		plan, err := rootfs.NewPlan(ctx, rootfs.Options{
			CacheDir: opts.CacheDir, TmpDir: opts.TmpDir, Suite: opts.Suite, Mirrors: opts.Mirrors,
			Force: opts.Force, Logf: p.logf, Log: opts.ToolLog,
		})
		if err != nil {
			return nil, err
		}
		rootfsKey = plan.Key
		runRootfs = plan.Build
	}

	in := Inputs{
		FormatVersion:    FormatVersion,
		KernelSHA256:     kernelInfo.SHA256,
		SupervisorSHA256: supInfo.SHA256,
		ModulesSHA256:    modulesHash(mods),
		RootfsKey:        rootfsKey,
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	unlock, err := fsutil.Lock(filepath.Join(opts.OutDir, ".build.lock"), func() { p.logf("waiting for another build into %s", opts.OutDir) })
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !opts.Force {
		if old, err := ReadManifest(opts.OutDir); err == nil && old.Inputs == in && old.JobFormat == jobFormat && old.intact(opts.OutDir) {
			old.CacheHit = true
			old.RootfsCacheHit = true
			p.logf("up to date: inputs %s… unchanged, nothing to build", in.Hash()[:12])
			return old, nil
		}
	}

	rfs, err := runRootfs(ctx)
	if err != nil {
		return nil, err
	}

	m := &Manifest{
		FormatVersion:  FormatVersion,
		JobFormat:      jobFormat,
		Inputs:         in,
		InputHash:      in.Hash(),
		KernelVersion:  kernel.Version,
		KernelSource:   kernel.Path,
		Supervisor:     supInfo,
		ModulesBuiltin: builtin,
		RootfsInfo:     *rfs,
		RootfsCacheHit: rfs.CacheHit,
		Rootfs:         FileInfo{Name: filepath.Base(rfs.Path), Size: rfs.Size, SHA256: rfs.SHA256},
		Tools:          toolVersions(rfs.Tools),
	}
	m.Modules = mods.BootList()
	for _, mod := range mods.Load {
		if !slices.Contains(m.Modules, mod.Name) {
			m.ModulesOnDemand = append(m.ModulesOnDemand, mod.Name)
		}
	}
	if err := writeOutputs(ctx, opts, kernel, mods, rfs, m, p); err != nil {
		return nil, err
	}
	m.BuildSeconds = time.Since(start).Seconds()
	m.Built = time.Now().UTC().Format(time.RFC3339)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(opts.OutDir, ManifestFile), append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	p.logf("done: %s %s, sha256 %s…", ImageFile, units.Bytes(m.Image.Size), m.Image.SHA256[:16])
	return m, nil
}

// resolveKernelModules reads the kernel's module index and selects Modules.
func resolveKernelModules(k *Kernel) (*ModuleSet, []string, error) {
	dep, err := os.ReadFile(filepath.Join(k.ModulesDir, "modules.dep"))
	if err != nil {
		return nil, nil, fmt.Errorf("kernel modules: %w", err)
	}
	builtin, err := os.ReadFile(filepath.Join(k.ModulesDir, "modules.builtin"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("kernel modules: %w", err)
	}
	set, err := ResolveModules(dep, builtin, append(slices.Clone(Modules), OnDemand...))
	if err != nil {
		return nil, nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	boot, err := ResolveModules(dep, builtin, Modules)
	if err != nil {
		return nil, nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	set.Boot = boot.BootList()
	for _, m := range OnDemand {
		if !slices.Contains(set.Builtin, m) {
			set.OnDemand = append(set.OnDemand, m)
		}
	}
	return set, set.Builtin, nil
}

func modulesHash(set *ModuleSet) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", strings.Join(Modules, " "), strings.Join(OnDemand, " "))
	h.Write(set.Dep)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// writeOutputs writes initramfs, kernel copy and disk image under temp names
// in OutDir and renames them into place. The old manifest is removed first,
// so an interrupted build is never mistaken for a complete one.
func writeOutputs(ctx context.Context, opts Options, k *Kernel, mods *ModuleSet, rfs *rootfs.Result, m *Manifest, p *progress) error {
	dir := opts.OutDir
	tmp := func(name string) string { return filepath.Join(dir, fmt.Sprintf(".%s.tmp-%d", name, os.Getpid())) }
	tmps := map[string]string{}
	for _, n := range []string{InitramfsFile, KernelFile, ImageFile} {
		tmps[n] = tmp(n)
		os.Remove(tmps[n])
		defer os.Remove(tmps[n]) // no-op after the rename
	}

	// initramfs
	supervisor, err := os.ReadFile(opts.SupervisorPath)
	if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	builtin, _ := os.ReadFile(filepath.Join(k.ModulesDir, "modules.builtin"))
	spec := InitramfsSpec{
		Init: supervisor, KernelVersion: k.Version, Modules: mods, ModulesBuiltin: builtin,
		ModuleData: func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(k.ModulesDir, rel)) },
	}
	if err := writeWith(tmps[InitramfsFile], func(w io.Writer) error { return WriteInitramfs(w, spec) }); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if m.Initramfs, err = hashFile(tmps[InitramfsFile]); err != nil {
		return err
	}
	m.Initramfs.Name = InitramfsFile
	p.logf("initramfs: %s (supervisor %s + %d modules)", units.Bytes(m.Initramfs.Size), units.Bytes(int64(len(supervisor))), len(mods.Load))

	// kernel copy
	if err := writeWith(tmps[KernelFile], func(w io.Writer) error {
		f, err := os.Open(k.Path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}); err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	if m.Kernel, err = hashFile(tmps[KernelFile]); err != nil {
		return err
	}
	m.Kernel.Name = KernelFile
	if err := ctx.Err(); err != nil {
		return err
	}

	// disk image
	m.Layout = PlanLayout(m.Kernel.Size+m.Initramfs.Size, rfs.Size)
	root, err := os.Open(rfs.Path)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer root.Close()
	seed := m.InputHash
	err = WriteDisk(tmps[ImageFile], DiskSpec{
		Layout: m.Layout,
		ESPFiles: []ESPFile{
			{Name: ESPKernel, Path: tmps[KernelFile]},
			{Name: ESPInitramfs, Path: tmps[InitramfsFile]},
		},
		Root:     root,
		DiskGUID: guidFrom(seed, "disk"), ESPGUID: guidFrom(seed, "esp"), RootGUID: guidFrom(seed, "root"),
	})
	if err != nil {
		return err
	}
	if m.Image, err = hashFile(tmps[ImageFile]); err != nil {
		return err
	}
	m.Image.Name = ImageFile
	p.logf("disk: %s (ESP %s, root %s)", units.Bytes(m.Image.Size), units.Bytes(m.Layout.ESPSize), units.Bytes(m.Layout.RootSize))
	if err := ctx.Err(); err != nil {
		return err
	}

	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image: %w", err)
	}
	for _, n := range []string{KernelFile, InitramfsFile, ImageFile} {
		if err := os.Rename(tmps[n], filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("image: %w", err)
		}
	}
	return fsutil.SyncDir(dir)
}

// writeWith creates path (0644), lets fill write it, and syncs it.
func writeWith(path string, fill func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// guidFrom derives a stable GUID from the build's input hash, so the same
// inputs give the same partition table.
func guidFrom(seed, what string) string {
	s := sha256.Sum256([]byte(seed + "/" + what))
	u, _ := uuid.FromBytes(s[:16])
	u[6] = (u[6] & 0x0f) | 0x40 // version 4 layout, as random GUIDs have
	u[8] = (u[8] & 0x3f) | 0x80
	return strings.ToUpper(u.String())
}

// toolVersions records what built the image.
func toolVersions(rootfsTools map[string]string) map[string]string {
	t := map[string]string{"go": runtime.Version()}
	for k, v := range rootfsTools {
		t[k] = v
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/diskfs/go-diskfs", "github.com/u-root/mkuimage":
				t[d.Path] = d.Version
			}
		}
	}
	return t
}

// progress prints "[ 12.3s] message" lines.
type progress struct {
	w     io.Writer
	start time.Time
}

func (p *progress) logf(format string, args ...any) {
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}
