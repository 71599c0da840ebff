package image

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"strings"
)

// Modules are the kernel modules the supervisor loads, in this order, before
// it looks for its disks. Their dependencies are added from modules.dep.
// Names use the kernel's canonical form (underscores); a name that the
// kernel has built in is skipped, so the list works for kernels that build
// some of these in.
var Modules = []string{
	// Devices: disks, serial ports (progress channel, console), entropy.
	"virtio_pci", "virtio_blk", "virtio_console", "virtio_rng",
	// crc32c, xxhash and blake2b back ext4/jbd2/xfs/btrfs checksums; they are
	// only soft dependencies (modules.softdep), so modules.dep does not pull them in.
	"crc32c_generic", "xxhash_generic", "blake2b_generic",
	// The appliance's own root: squashfs plus a tmpfs overlay.
	"squashfs", "overlay", "loop",
	// The clients' filesystems (and the cache's: ext4); xfs and btrfs
	// are OnDemand.
	"ext4",
	// FAT (job disk, ESPs) with the code pages vfat needs at mount: cp437
	// and the default iocharset (ascii), plus utf8.
	"vfat", "nls_cp437", "nls_ascii", "nls_utf8",
}

// OnDemand are modules that are in the initramfs but not in etc/sb-modules:
// the supervisor loads them when a job needs them, and all of them for a
// rescue shell or an exec job, whose programs may use any (the userland has
// no modprobe). Every boot loaded them all once: under TCG, xfs and btrfs
// (with the raid6_pq and xor benchmarks btrfs pulls in) took 3.5 s of the
// 5 s an appliance spent loading modules, the rest here 0.36 s of 1.27 s
// on an idle host (measured per module), and most jobs use none of them.
var OnDemand = []string{
	// Filesystems: at their first mount (boot.Stack.Mount).
	"xfs", "btrfs",
	// The network (NetworkModules): for a job with a network target.
	"virtio_net", "af_packet",
	// Host directories (NinePModules): when QEMU offers a 9p share
	// (file:// targets, restores to a directory). virtiofs with fuse
	// (borg mount in a rescue shell) only for shells.
	"9pnet_virtio", "9p", "virtiofs",
	// LVM inside the guest disks (DMModules): once a disk holds an LVM
	// physical volume.
	"dm_mod", "dm_snapshot", "dm_thin_pool", "dm_mirror",
	// vsock: nothing of ours uses it; for shells.
	"vsock", "vmw_vsock_virtio_transport",
}

// Module is one module file to put into the initramfs.
type Module struct {
	Name string // canonical name: file stem with "-" as "_"
	Path string // relative to /lib/modules/<kver>, as in modules.dep
}

// ModuleSet is the resolved selection: what goes into the initramfs.
type ModuleSet struct {
	// Load is every module file, dependencies before their users; loading
	// them in this order needs no dependency resolution at all.
	Load []Module
	// Builtin are wanted names the kernel has built in (nothing to load).
	Builtin []string
	// Dep is modules.dep restricted to Load, in Load order.
	Dep []byte
	// Boot, when set, are the names etc/sb-modules lists (Load without
	// what only OnDemand modules need); nil lists all of Load.
	Boot []string
	// OnDemand are the wanted names loaded at first mount
	// (etc/sb-modules-on-demand).
	OnDemand []string
}

// BootList is what etc/sb-modules lists, in load order.
func (s *ModuleSet) BootList() []string {
	if s.Boot != nil {
		return s.Boot
	}
	var out []string
	for _, m := range s.Load {
		out = append(out, m.Name)
	}
	return out
}

// ModuleName is the canonical name of a module file path.
func ModuleName(p string) string {
	base := path.Base(p)
	for _, ext := range []string{".ko.xz", ".ko.zst", ".ko.gz", ".ko"} {
		if strings.HasSuffix(base, ext) {
			base = strings.TrimSuffix(base, ext)
			break
		}
	}
	return strings.ReplaceAll(base, "-", "_")
}

// ResolveModules selects the files for wanted and their dependencies from
// the kernel's modules.dep and modules.builtin. It is a pure function of its
// inputs. A wanted module that is neither a file nor built in is an error:
// a kernel lacking one of them would give an appliance that fails at boot.
func ResolveModules(modulesDep, modulesBuiltin []byte, wanted []string) (*ModuleSet, error) {
	deps := map[string][]string{} // path -> dependency paths
	byName := map[string]string{} // canonical name -> path
	sc := bufio.NewScanner(bytes.NewReader(modulesDep))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		p, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("modules.dep line %d: no colon", n)
		}
		p = strings.TrimSpace(p)
		deps[p] = strings.Fields(rest)
		byName[ModuleName(p)] = p
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.dep: %w", err)
	}
	builtin := map[string]bool{}
	for _, l := range strings.Split(string(modulesBuiltin), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			builtin[ModuleName(l)] = true
		}
	}

	set := &ModuleSet{}
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(p string, stack []string) error
	visit = func(p string, stack []string) error {
		switch state[p] {
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(stack, p), " -> "))
		case 2:
			return nil
		}
		ds, ok := deps[p]
		if !ok {
			return fmt.Errorf("module %s (needed by %s) is not in modules.dep", p, strings.Join(stack, " -> "))
		}
		state[p] = 1
		// modules.dep lists the whole closure with the deepest last; going
		// backwards visits leaves first, as modprobe loads them.
		for i := len(ds) - 1; i >= 0; i-- {
			if err := visit(ds[i], append(stack, p)); err != nil {
				return err
			}
		}
		state[p] = 2
		set.Load = append(set.Load, Module{Name: ModuleName(p), Path: p})
		return nil
	}
	for _, w := range wanted {
		name := strings.ReplaceAll(w, "-", "_")
		p, ok := byName[name]
		switch {
		case ok:
			if err := visit(p, nil); err != nil {
				return nil, err
			}
		case builtin[name]:
			set.Builtin = append(set.Builtin, name)
		default:
			return nil, fmt.Errorf("kernel module %s: neither in modules.dep nor built in", w)
		}
	}
	for _, m := range set.Load {
		if !probeable(m.Path) {
			return nil, fmt.Errorf("kernel module %s: file name %s mixes '-' and '_', which u-root's kmodule cannot find by name", m.Name, path.Base(m.Path))
		}
	}

	var dep bytes.Buffer
	for _, m := range set.Load {
		dep.WriteString(m.Path + ":")
		for _, d := range deps[m.Path] {
			dep.WriteString(" " + d)
		}
		dep.WriteString("\n")
	}
	set.Dep = dep.Bytes()
	return set, nil
}

// probeable reports whether kmodule.Probe(name) finds this file: it tries
// the name with all "-" and with all "_", never a mix.
func probeable(p string) bool {
	base := path.Base(p)
	return !(strings.Contains(base, "-") && strings.Contains(base, "_"))
}

// ModulesList renders etc/sb-modules: one module name per line in load
// order, each loadable with kmodule.Probe (or by its path from modules.dep).
func ModulesList(set *ModuleSet) []byte {
	var b bytes.Buffer
	b.WriteString("# Kernel modules for the supervisor to load, in this order (dependencies first).\n")
	b.WriteString("# Files and modules.dep are under /lib/modules/<kernel version>/.\n")
	for _, m := range set.BootList() {
		b.WriteString(m + "\n")
	}
	return b.Bytes()
}
