package image

import (
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/u-root/mkuimage/cpio"
)

// ModulesListPath is where the initramfs lists the modules to load, one
// name per line, dependencies first (see ModulesList).
const ModulesListPath = "etc/sb-modules"

// OnDemandListPath lists the modules (OnDemand) that the supervisor loads
// at their first mount, or all at once for a rescue shell.
const OnDemandListPath = "etc/sb-modules-on-demand"

// initramfsDirs exist in every initramfs: mount points for the supervisor
// and the directory the root squashfs is mounted on.
var initramfsDirs = []string{"dev", "proc", "sys", "run", "tmp", "sysroot", "etc"}

// InitramfsSpec is everything that goes into the initramfs.
type InitramfsSpec struct {
	Init          []byte // the supervisor, becomes /init
	KernelVersion string
	Modules       *ModuleSet
	// ModuleData returns a module file's bytes by its modules.dep path.
	ModuleData func(relPath string) ([]byte, error)
	// ModulesBuiltin is the kernel's modules.builtin, copied so kmodule
	// knows which names need no file.
	ModulesBuiltin []byte
}

// initramfsRecords are the spec's cpio records, sorted by name (every
// directory before its contents) with fixed times and owners, so the same
// spec always gives the same bytes.
func initramfsRecords(s InitramfsSpec) ([]cpio.Record, error) {
	recs := map[string]cpio.Record{}
	var add func(r cpio.Record)
	add = func(r cpio.Record) {
		if dir := path.Dir(r.Name); dir != "." {
			if _, ok := recs[dir]; !ok {
				add(cpio.Directory(dir, 0o755))
			}
		}
		recs[r.Name] = r
	}
	for _, d := range initramfsDirs {
		mode := uint64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		add(cpio.Directory(d, mode))
	}
	// The kernel opens /dev/console for PID 1 before anything is mounted.
	add(cpio.CharDev("dev/console", 0o600, 5, 1))
	add(cpio.CharDev("dev/null", 0o666, 1, 3))
	add(cpio.StaticRecord(s.Init, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}))

	mdir := path.Join("lib/modules", s.KernelVersion)
	add(cpio.Directory(mdir, 0o755))
	add(cpio.StaticRecord(ModulesList(s.Modules), cpio.Info{Name: ModulesListPath, Mode: cpio.S_IFREG | 0o644}))
	if len(s.Modules.OnDemand) > 0 {
		add(cpio.StaticRecord([]byte(strings.Join(s.Modules.OnDemand, "\n")+"\n"), cpio.Info{Name: OnDemandListPath, Mode: cpio.S_IFREG | 0o644}))
	}
	add(cpio.StaticRecord(s.Modules.Dep, cpio.Info{Name: path.Join(mdir, "modules.dep"), Mode: cpio.S_IFREG | 0o644}))
	add(cpio.StaticRecord(s.ModulesBuiltin, cpio.Info{Name: path.Join(mdir, "modules.builtin"), Mode: cpio.S_IFREG | 0o644}))
	for _, m := range s.Modules.Load {
		data, err := s.ModuleData(m.Path)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", m.Name, err)
		}
		add(cpio.StaticRecord(data, cpio.Info{Name: path.Join(mdir, m.Path), Mode: cpio.S_IFREG | 0o644}))
	}

	names := make([]string, 0, len(recs))
	for n := range recs {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]cpio.Record, 0, len(names))
	for i, n := range names {
		r := cpio.MakeReproducible(recs[n])
		r.Ino = uint64(i + 1)
		r.NLink = 1
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			r.NLink = 2
		}
		out = append(out, r)
	}
	return out, nil
}

// WriteInitramfs writes the spec as a gzip-compressed newc cpio archive
// (every Debian kernel can unpack gzip).
func WriteInitramfs(w io.Writer, s InitramfsSpec) error {
	recs, err := initramfsRecords(s)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	cw := cpio.Newc.Writer(zw)
	if err := cpio.WriteRecords(cw, recs); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := cpio.WriteTrailer(cw); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return zw.Close()
}
