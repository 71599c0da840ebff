package rootfs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FormatVersion changes whenever the tree is produced differently in a way
// the other key inputs do not show (mmdebstrap or mksquashfs options,
// post-processing), so that such a change invalidates every cached rootfs.
//
// 2: zstd level 3 (was mksquashfs's default, 15).
const FormatVersion = 2

// KeyInputs is everything the squashfs content depends on.
type KeyInputs struct {
	Packages []byte        // packages.txt as is (comments included: cheap, and simplest to reason about)
	Overlay  []OverlayFile // paths, modes and contents
	Suite    string
	AptLines []string          // mirrors and suites
	Tools    map[string]string // mmdebstrap and mksquashfs versions
}

// Key is the hex sha256 over in and FormatVersion. Overlay order does not
// matter; everything else does.
func Key(in KeyInputs) string {
	h := sha256.New()
	field := func(name string, b []byte) {
		// Length-prefixed, so no two different inputs serialize alike.
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	field("format", []byte(fmt.Sprint(FormatVersion)))
	field("packages", in.Packages)
	ov := append([]OverlayFile(nil), in.Overlay...)
	sort.Slice(ov, func(i, j int) bool { return ov[i].Path < ov[j].Path })
	for _, f := range ov {
		field("overlay-path", []byte(f.Path))
		field("overlay-mode", []byte(fmt.Sprintf("%o", f.Mode.Perm())))
		field("overlay-data", f.Data)
	}
	field("suite", []byte(in.Suite))
	for _, l := range in.AptLines {
		field("apt", []byte(l))
	}
	tools := make([]string, 0, len(in.Tools))
	for k := range in.Tools {
		tools = append(tools, k)
	}
	sort.Strings(tools)
	for _, k := range tools {
		field("tool-"+k, []byte(in.Tools[k]))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Result describes one built (or cached) rootfs squashfs. It is stored next
// to the squashfs as rootfs-<key>.json and copied into the image manifest.
type Result struct {
	Key      string            `json:"key"`
	Path     string            `json:"-"` // the cached squashfs
	Size     int64             `json:"size"`
	SHA256   string            `json:"sha256"`
	Suite    string            `json:"suite"`
	AptLines []string          `json:"apt_sources"`
	Tools    map[string]string `json:"tools"`
	// Packages maps each package of packages.txt (and a few essentials) to
	// the version installed, from the tree's var/lib/dpkg/status.
	Packages     map[string]string `json:"packages"`
	Built        string            `json:"built"` // RFC 3339
	BuildSeconds float64           `json:"build_seconds"`
	CacheHit     bool              `json:"-"`
}

// cacheName is the file name stem of a cache entry: short enough to read,
// long enough never to collide in one cache directory.
func cacheName(key string) string { return "rootfs-" + key[:16] }

// lookup returns the cached entry for key, or nil when there is none or it is
// damaged (then it is rebuilt).
func lookup(dir, key string) *Result {
	stem := filepath.Join(dir, cacheName(key))
	data, err := os.ReadFile(stem + ".json")
	if err != nil {
		return nil
	}
	var r Result
	if json.Unmarshal(data, &r) != nil || r.Key != key {
		return nil
	}
	st, err := os.Stat(stem + ".sqfs")
	if err != nil || st.Size() != r.Size {
		return nil
	}
	r.Path = stem + ".sqfs"
	r.CacheHit = true
	return &r
}

// prune removes cache entries other than keep, oldest first, leaving at most
// max entries, and temp files that a killed build left.
func prune(dir, keep string, max int) error {
	tmps, _ := filepath.Glob(filepath.Join(dir, ".rootfs-*.tmp-*"))
	for _, t := range tmps {
		os.Remove(t)
	}
	jsons, err := filepath.Glob(filepath.Join(dir, "rootfs-*.json"))
	if err != nil {
		return err
	}
	type entry struct {
		stem string
		mod  int64
	}
	var others []entry
	for _, j := range jsons {
		stem := strings.TrimSuffix(j, ".json")
		if filepath.Base(stem) == cacheName(keep) {
			continue
		}
		st, err := os.Stat(j)
		if err != nil {
			continue
		}
		others = append(others, entry{stem, st.ModTime().UnixNano()})
	}
	sort.Slice(others, func(i, j int) bool { return others[i].mod > others[j].mod })
	var errs []error
	for i, e := range others {
		if i < max-1 {
			continue
		}
		// The json goes first: without it the entry is no longer a cache hit.
		for _, ext := range []string{".json", ".sqfs"} {
			if err := os.Remove(e.stem + ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ParseDpkgStatus returns name → version of the installed packages in a
// dpkg status file.
func ParseDpkgStatus(data []byte) map[string]string {
	out := map[string]string{}
	var name, version, status string
	flush := func() {
		if name != "" && version != "" && strings.HasSuffix(status, " installed") {
			out[name] = version
		}
		name, version, status = "", "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		if k, v, ok := strings.Cut(line, ": "); ok {
			switch k {
			case "Package":
				name = v
			case "Version":
				version = v
			case "Status":
				status = v
			}
		}
	}
	flush()
	return out
}
