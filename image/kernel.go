package image

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
)

// Kernel is the kernel the appliance boots and where its modules are.
type Kernel struct {
	Path       string // the bzImage (vmlinuz-<version>)
	Version    string // uname -r, e.g. 6.1.0-56-amd64
	ModulesDir string // <modules root>/<version>
}

// FindKernel returns the kernel at path, or the newest /boot/vmlinuz-* that
// has a matching modules directory when path is "". version overrides the
// version taken from the file name.
func FindKernel(bootDir, modulesRoot, path, version string) (*Kernel, error) {
	if path == "" {
		cands, _ := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
		var ok []string
		for _, c := range cands {
			v := strings.TrimPrefix(filepath.Base(c), "vmlinuz-")
			if st, err := os.Stat(filepath.Join(modulesRoot, v, "modules.dep")); err == nil && st.Mode().IsRegular() {
				ok = append(ok, c)
			}
		}
		if len(ok) == 0 {
			return nil, fmt.Errorf("no kernel: no %s/vmlinuz-* with a matching %s/<version>/modules.dep (apt-get install linux-image-amd64)", bootDir, modulesRoot)
		}
		sort.Slice(ok, func(i, j int) bool { return versionLess(ok[i], ok[j]) })
		path = ok[len(ok)-1]
	}
	if version == "" {
		base := filepath.Base(path)
		if !strings.HasPrefix(base, "vmlinuz-") {
			return nil, fmt.Errorf("kernel %s: cannot tell its version from the file name; give the version explicitly", path)
		}
		version = strings.TrimPrefix(base, "vmlinuz-")
	}
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("kernel %s: not a regular file", path)
	}
	dir := filepath.Join(modulesRoot, version)
	if _, err := os.Stat(filepath.Join(dir, "modules.dep")); err != nil {
		return nil, fmt.Errorf("kernel %s: no modules for version %s: %w", path, version, err)
	}
	return &Kernel{Path: path, Version: version, ModulesDir: dir}, nil
}

// versionLess orders version strings with their digit runs compared as
// numbers: 6.1.0-9 < 6.1.0-56 < 6.10.0-1.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ad, bd := unicode.IsDigit(rune(a[0])), unicode.IsDigit(rune(b[0]))
		if ad && bd {
			an, ar := splitRun(a, true)
			bn, br := splitRun(b, true)
			an, bn = strings.TrimLeft(an, "0"), strings.TrimLeft(bn, "0")
			if len(an) != len(bn) {
				return len(an) < len(bn)
			}
			if an != bn {
				return an < bn
			}
			a, b = ar, br
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func splitRun(s string, digits bool) (string, string) {
	i := 0
	for i < len(s) && unicode.IsDigit(rune(s[i])) == digits {
		i++
	}
	return s[:i], s[i:]
}

// checkStatic makes sure the supervisor can run as /init: an x86-64 ELF
// executable without a dynamic loader (the initramfs has no libc).
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("supervisor %s: not an ELF executable: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("supervisor %s: built for %s, the appliance is x86-64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("supervisor " + path + ": dynamically linked; build it with CGO_ENABLED=0 go build ./supervisor")
		}
	}
	return nil
}
