package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// ModuleList is where the image builder lists the modules to load, in order.
const ModuleList = "/etc/sb-modules"

// OnDemandList lists the filesystem modules that are in the initramfs but
// loaded only at their filesystem's first mount (Stack.Mount), or all at
// once for a rescue shell, whose operator mounts by hand.
const OnDemandList = "/etc/sb-modules-on-demand"

// fsModules serializes loading filesystem modules on demand.
var fsModules sync.Mutex

// LoadFilesystem loads the module of filesystem type fstype when the
// kernel does not know the type yet (/proc/filesystems) and the image
// has it on demand (OnDemandList); anything else is left to mount(2),
// which names an unknown type itself.
func LoadFilesystem(fstype string, logf func(string, ...any)) {
	fsModules.Lock()
	defer fsModules.Unlock()
	known, _ := os.ReadFile("/proc/filesystems")
	list, err := os.ReadFile(OnDemandList)
	if err != nil || !NeedsModule(fstype, string(known), string(list)) {
		return
	}
	start := time.Now()
	n, failed := loadModules([]string{fstype}, logf)
	logf("filesystem %s: loaded its %d module(s) on demand in %v, %d failed", fstype, n, time.Since(start).Round(time.Millisecond), len(failed))
}

// LoadModules loads every module named in listFile (dependencies are
// resolved through modules.dep as well). A module that is already loaded or
// built in is not an error; any other failure is reported and loading goes
// on, since a missing driver shows up later as a clear "disk not found".
func LoadModules(listFile string, logf func(string, ...any)) (loaded int, failed []error) {
	data, err := os.ReadFile(listFile)
	if err != nil {
		return 0, []error{fmt.Errorf("read module list: %w", err)}
	}
	return loadModules(ParseModuleList(string(data)), logf)
}

// loadModules loads mods and their dependencies (modules.dep).
func loadModules(mods []string, logf func(string, ...any)) (loaded int, failed []error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0, []error{fmt.Errorf("uname: %w", err)}
	}
	kver := unix.ByteSliceToString(u.Release[:])
	p, err := kmodule.NewProber(kmodule.ProbeOpts{KVer: kver})
	if err != nil {
		return 0, []error{fmt.Errorf("modules of kernel %s: %w", kver, err)}
	}
	for _, m := range mods {
		if err := p.Probe(m, ""); err != nil {
			if errors.Is(err, unix.EEXIST) || builtin(m) {
				continue
			}
			// kmodule maps "-" and "_" all one way, so nls_iso8859-1 is
			// not found by name; its dependencies came earlier in the list.
			if f := byFile(kver, m); f != "" {
				if err = loadFile(f); err == nil || errors.Is(err, unix.EEXIST) {
					loaded++
					continue
				}
			}
			failed = append(failed, fmt.Errorf("load module %s: %w", m, err))
			logf("load module %s: %v", m, err)
			continue
		}
		loaded++
	}
	return loaded, failed
}

// builtin reports whether the kernel has module m compiled in (or loaded).
func builtin(m string) bool {
	_, err := os.Stat("/sys/module/" + strings.ReplaceAll(m, "-", "_"))
	return err == nil
}

// byFile finds module m's file in modules.dep by exact base name.
func byFile(kver, m string) string {
	dir := filepath.Join("/lib/modules", kver)
	data, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		p, _, _ := strings.Cut(l, ":")
		b := filepath.Base(p)
		for _, ext := range []string{".ko", ".ko.xz", ".ko.gz", ".ko.zst"} {
			if b == m+ext {
				return filepath.Join(dir, p)
			}
		}
	}
	return ""
}

func loadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return kmodule.FileInit(f, "", 0)
}
