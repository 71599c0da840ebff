// Package rootfs is the appliance's userland: the Debian package set
// (packages.txt), the files laid over the installed tree (overlay/), and how
// the two become the read-only squashfs root of the appliance (mmdebstrap,
// overlay, mksquashfs), cached by a hash of everything that goes in.
//
// The spec is embedded, so a hostctl binary always builds the userland it was
// compiled with.
package rootfs

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed packages.txt
var packagesTxt []byte

//go:embed all:overlay
var overlayFS embed.FS

// MountPoints are created (empty) in the tree: the supervisor mounts the
// job's filesystems there (see overlay/etc/motd).
var MountPoints = []string{"snapshot", "cache", "job", "target", "restore", "share"}

// PackagesFile returns packages.txt as embedded.
func PackagesFile() []byte { return bytes.Clone(packagesTxt) }

// Packages returns the package names of packages.txt.
func Packages() ([]string, error) { return ParsePackages(packagesTxt) }

// ParsePackages reads a package list: one name per line, "#" starts a
// comment, blank lines are ignored. A name appearing twice is an error (it is
// almost always an editing mistake).
func ParsePackages(data []byte) ([]string, error) {
	var pkgs []string
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		switch len(fields) {
		case 0:
			continue
		case 1:
		default:
			return nil, fmt.Errorf("packages.txt line %d: one package per line, got %q", n, strings.TrimSpace(line))
		}
		p := fields[0]
		if !validPackage(p) {
			return nil, fmt.Errorf("packages.txt line %d: invalid package name %q", n, p)
		}
		if first, ok := seen[p]; ok {
			return nil, fmt.Errorf("packages.txt line %d: %s already listed on line %d", n, p, first)
		}
		seen[p] = n
		pkgs = append(pkgs, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("packages.txt: no packages")
	}
	return pkgs, nil
}

// validPackage follows Debian policy 5.6.1 (lower case, digits, + - .; at
// least two characters, starting alphanumeric), so nothing odd reaches argv.
func validPackage(p string) bool {
	if len(p) < 2 || !(p[0] >= 'a' && p[0] <= 'z' || p[0] >= '0' && p[0] <= '9') {
		return false
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// OverlayFile is one regular file of overlay/, with the mode it gets in the tree.
type OverlayFile struct {
	Path string // relative, slash-separated: "etc/motd"
	Mode fs.FileMode
	Data []byte
}

// Overlay returns the embedded overlay files sorted by path.
func Overlay() ([]OverlayFile, error) {
	sub, err := fs.Sub(overlayFS, "overlay")
	if err != nil {
		return nil, err
	}
	return ReadOverlay(sub)
}

// ReadOverlay reads every regular file of fsys. Embedded files carry no
// permission bits, so the mode is a rule of the path and content (see
// overlayMode); the rule is part of the cache key through the modes it yields.
func ReadOverlay(fsys fs.FS) ([]OverlayFile, error) {
	var files []OverlayFile
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("overlay %s: only regular files are supported", p)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, OverlayFile{Path: p, Mode: overlayMode(p, data), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read overlay: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// overlayMode: scripts (#!) and files in bin directories are executable,
// everything else is 0644. Secrets never live in the overlay.
func overlayMode(p string, data []byte) fs.FileMode {
	switch path.Base(path.Dir(p)) {
	case "bin", "sbin":
		return 0o755
	}
	if bytes.HasPrefix(data, []byte("#!")) {
		return 0o755
	}
	return 0o644
}
