package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// ModuleList is where the image builder lists the modules to load, in order.
const ModuleList = "/etc/sb-modules"

// OnDemandList lists the modules that are in the initramfs but loaded only
// when a job needs them: a filesystem's at its first mount (Stack.Mount),
// the network's, 9p's and device-mapper's by the supervisor
// (LoadOnDemand), all at once for a rescue shell or an exec job, whose
// programs load nothing themselves.
const OnDemandList = "/etc/sb-modules-on-demand"

// Groups of on-demand modules, loaded in this order (dependencies come
// from modules.dep).
var (
	// NetworkModules drive the appliance's NIC (af_packet, for DHCP's raw
	// socket, is built into Debian's kernel).
	NetworkModules = []string{"virtio_net", "af_packet"}
	// NinePModules mount QEMU's 9p shares.
	NinePModules = []string{"9pnet_virtio", "9p"}
	// DMModules activate LVM volumes inside the guest disks.
	DMModules = []string{"dm_mod", "dm_snapshot", "dm_thin_pool", "dm_mirror"}
)

// fsModules serializes loading modules on demand.
var fsModules sync.Mutex

// LoadOnDemand loads those of mods that the image has on demand
// (OnDemandList) and the kernel has neither loaded nor built in, for what
// (a log line says how long it took).
func LoadOnDemand(what string, mods []string, logf func(string, ...any)) {
	fsModules.Lock()
	defer fsModules.Unlock()
	list, err := os.ReadFile(OnDemandList)
	if err != nil {
		return
	}
	offered := ParseModuleList(string(list))
	var need []string
	for _, m := range mods {
		if slices.Contains(offered, m) && !builtin(m) {
			need = append(need, m)
		}
	}
	if len(need) == 0 {
		return
	}
	start := time.Now()
	n, failed := loadModules(need, logf)
	logf("%s: loaded %d module(s) on demand in %v, %d failed", what, n, time.Since(start).Round(time.Millisecond), len(failed))
}

// LoadFilesystem loads the module of filesystem type fstype when the
// kernel does not know the type yet (/proc/filesystems) and the image
// has it on demand (OnDemandList, FilesystemModules); anything else is
// left to mount(2), which names an unknown type itself.
func LoadFilesystem(fstype string, logf func(string, ...any)) {
	known, _ := os.ReadFile("/proc/filesystems")
	list, err := os.ReadFile(OnDemandList)
	if err != nil || !NeedsModule(fstype, string(known), string(list)) {
		return
	}
	LoadOnDemand("filesystem "+fstype, []string{fstype}, logf)
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
