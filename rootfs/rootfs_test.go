package rootfs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestParsePackages(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		err      string
	}{
		{"plain", "borgbackup\nrestic\n", []string{"borgbackup", "restic"}, ""},
		{"comments and blanks", "# head\n\nborgbackup # the backend\n  lvm2  \n", []string{"borgbackup", "lvm2"}, ""},
		{"plus and dots", "libstdc++6\npython3.11\n", []string{"libstdc++6", "python3.11"}, ""},
		{"two on a line", "borgbackup restic\n", nil, "line 1: one package per line"},
		{"duplicate", "a1\nb2\na1\n", nil, "line 3: a1 already listed on line 1"},
		{"upper case", "Borg\n", nil, `invalid package name "Borg"`},
		{"option smuggling", "--foo\n", nil, "invalid package name"},
		{"empty", "# nothing\n", nil, "no packages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePackages([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestEmbeddedSpec(t *testing.T) {
	pkgs, err := Packages()
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"borgbackup", "duplicity", "restic", "gnupg", "openssh-client", "lvm2", "e2fsprogs", "xfsprogs", "btrfs-progs", "dosfstools", "util-linux", "bash"} {
		if !contains(pkgs, must) {
			t.Errorf("packages.txt lacks %s", must)
		}
	}
	ov, err := Overlay()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]OverlayFile{}
	for _, f := range ov {
		files[f.Path] = f
	}
	if got := string(files["etc/hostname"].Data); got != "sb-appliance\n" {
		t.Errorf("etc/hostname = %q", got)
	}
	for _, p := range []string{"etc/profile", "etc/fstab", "etc/motd"} {
		if f, ok := files[p]; !ok || f.Mode != 0o644 {
			t.Errorf("%s: present %v mode %o, want 0644", p, ok, f.Mode)
		}
	}
	if !strings.Contains(string(files["etc/profile"].Data), "sb-rescue") {
		t.Error("etc/profile does not set the rescue prompt")
	}
	for _, mp := range []string{"/snapshot", "/cache", "/job", "/target"} {
		if !strings.Contains(string(files["etc/motd"].Data), mp) {
			t.Errorf("motd does not explain %s", mp)
		}
	}
}

func TestOverlayModes(t *testing.T) {
	ov, err := ReadOverlay(fstest.MapFS{
		"usr/local/bin/x":    {Data: []byte("binary")},
		"etc/rc.sh":          {Data: []byte("#!/bin/sh\n")},
		"etc/motd":           {Data: []byte("hi")},
		"usr/local/sbin/y.d": {Data: []byte("z")},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]os.FileMode{}
	for _, f := range ov {
		got[f.Path] = f.Mode
	}
	want := map[string]os.FileMode{"usr/local/bin/x": 0o755, "etc/rc.sh": 0o755, "etc/motd": 0o644, "usr/local/sbin/y.d": 0o755}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("modes %v, want %v", got, want)
	}
	if ov[0].Path != "etc/motd" || ov[len(ov)-1].Path != "usr/local/sbin/y.d" {
		t.Errorf("not sorted: %v", ov)
	}
}

func TestKey(t *testing.T) {
	base := func() KeyInputs {
		return KeyInputs{
			Packages: []byte("borgbackup\n"),
			Overlay: []OverlayFile{
				{Path: "etc/hostname", Mode: 0o644, Data: []byte("sb-appliance\n")},
				{Path: "etc/motd", Mode: 0o644, Data: []byte("hello\n")},
			},
			Suite:    "bookworm",
			AptLines: []string{"deb http://deb.debian.org/debian bookworm main"},
			Tools:    map[string]string{"mmdebstrap": "mmdebstrap 1.3.5", "mksquashfs": "mksquashfs version 4.5.1"},
		}
	}
	ref := Key(base())
	if len(ref) != 64 {
		t.Fatalf("key %q is not a hex sha256", ref)
	}
	tests := []struct {
		name   string
		change func(*KeyInputs)
		same   bool
	}{
		{"identical", func(*KeyInputs) {}, true},
		{"overlay order", func(in *KeyInputs) { in.Overlay[0], in.Overlay[1] = in.Overlay[1], in.Overlay[0] }, true},
		{"package added", func(in *KeyInputs) { in.Packages = []byte("borgbackup\nrestic\n") }, false},
		{"package comment", func(in *KeyInputs) { in.Packages = []byte("borgbackup # b\n") }, false},
		{"overlay content", func(in *KeyInputs) { in.Overlay[1].Data = []byte("hello!\n") }, false},
		{"overlay mode", func(in *KeyInputs) { in.Overlay[1].Mode = 0o755 }, false},
		{"overlay path", func(in *KeyInputs) { in.Overlay[1].Path = "etc/issue" }, false},
		{"overlay file added", func(in *KeyInputs) {
			in.Overlay = append(in.Overlay, OverlayFile{Path: "etc/x", Mode: 0o644})
		}, false},
		{"suite", func(in *KeyInputs) { in.Suite = "trixie" }, false},
		{"mirror", func(in *KeyInputs) { in.AptLines[0] = "deb http://proxy:3142/debian bookworm main" }, false},
		{"security line", func(in *KeyInputs) {
			in.AptLines = append(in.AptLines, "deb http://deb.debian.org/debian-security bookworm-security main")
		}, false},
		{"mmdebstrap version", func(in *KeyInputs) { in.Tools["mmdebstrap"] = "mmdebstrap 1.4.0" }, false},
		// Moving bytes between fields must not collide.
		{"field boundary", func(in *KeyInputs) {
			in.Packages = []byte("borgbackup\nbookworm")
			in.Suite = ""
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base()
			tt.change(&in)
			if got := Key(in); (got == ref) != tt.same {
				t.Errorf("key equal to base = %v, want %v", got == ref, tt.same)
			}
		})
	}
}

func TestParseSources(t *testing.T) {
	deb822 := `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
`
	list := `# comment
deb [arch=amd64 signed-by=/x.gpg] http://proxy:3142/debian bookworm main contrib
deb-src http://src.example/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main
`
	tests := []struct {
		name, file, data, suite string
		want                    Mirrors
		err                     string
	}{
		{"deb822", "debian.sources", deb822, "bookworm", Mirrors{"http://deb.debian.org/debian", "http://deb.debian.org/debian-security"}, ""},
		{"one-line", "sources.list", list, "bookworm", Mirrors{"http://proxy:3142/debian", "http://security.debian.org/debian-security"}, ""},
		{"other suite", "sources.list", list, "trixie", Mirrors{}, `no APT source for suite "trixie"`},
		{"disabled only", "x.sources", "Types: deb\nEnabled: no\nURIs: http://a/debian\nSuites: bookworm\nComponents: main\n", "bookworm", Mirrors{}, "no APT source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := ParseSources(tt.file, []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			got, err := PickMirrors(src, tt.suite)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestHostMirrorsAndSuite(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/apt/sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("NAME=\"Debian GNU/Linux\"\nVERSION_CODENAME=bookworm\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/debian.sources"),
		[]byte("Types: deb\nURIs: http://mirror.local/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/node.sources.disabled"), []byte("garbage"), 0o644)
	suite, err := HostSuite(root)
	if err != nil || suite != "bookworm" {
		t.Fatalf("suite %q, %v", suite, err)
	}
	m, err := HostMirrors(root, suite)
	if err != nil {
		t.Fatal(err)
	}
	if m != (Mirrors{Archive: "http://mirror.local/debian"}) {
		t.Fatalf("mirrors %+v", m)
	}
	want := []string{"deb http://mirror.local/debian bookworm main", "deb http://mirror.local/debian bookworm-updates main"}
	if got := AptLines(m, suite); !reflect.DeepEqual(got, want) {
		t.Fatalf("apt lines %q", got)
	}
}

func TestParseDpkgStatus(t *testing.T) {
	status := `Package: borgbackup
Status: install ok installed
Version: 1.2.4-1
Description: deduplicating
 backup program

Package: removed
Status: deinstall ok config-files
Version: 1.0

Package: restic
Version: 0.14.0-1+b5
Status: install ok installed
`
	got := ParseDpkgStatus([]byte(status))
	want := map[string]string{"borgbackup": "1.2.4-1", "restic": "0.14.0-1+b5"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
}

func TestCacheLookupAndPrune(t *testing.T) {
	dir := t.TempDir()
	key := strings.Repeat("ab", 32)
	if lookup(dir, key) != nil {
		t.Fatal("hit in an empty cache")
	}
	stem := filepath.Join(dir, cacheName(key))
	os.WriteFile(stem+".sqfs", []byte("squash"), 0o644)
	if lookup(dir, key) != nil {
		t.Fatal("hit without the json (a half-written entry)")
	}
	os.WriteFile(stem+".json", []byte(`{"key":"`+key+`","size":6}`), 0o644)
	if r := lookup(dir, key); r == nil || r.Path != stem+".sqfs" || !r.CacheHit {
		t.Fatalf("lookup = %+v", r)
	}
	os.WriteFile(stem+".sqfs", []byte("squash, longer"), 0o644)
	if lookup(dir, key) != nil {
		t.Fatal("hit although the size differs")
	}

	// prune keeps the current entry and the newest other one, and removes temp files.
	for i, k := range []string{"11", "22", "33"} {
		s := filepath.Join(dir, cacheName(strings.Repeat(k, 32)))
		os.WriteFile(s+".sqfs", nil, 0o644)
		os.WriteFile(s+".json", nil, 0o644)
		mt := mtime(int64(i))
		os.Chtimes(s+".json", mt, mt)
	}
	os.WriteFile(filepath.Join(dir, ".rootfs-x.tmp-1"), nil, 0o644)
	if err := prune(dir, key, 2); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	var names []string
	for _, l := range left {
		names = append(names, filepath.Base(l))
	}
	want := []string{cacheName(strings.Repeat("33", 32)) + ".json", cacheName(strings.Repeat("33", 32)) + ".sqfs",
		cacheName(key) + ".json", cacheName(key) + ".sqfs"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("left %v, want %v", names, want)
	}
	if _, err := os.Stat(filepath.Join(dir, ".rootfs-x.tmp-1")); err == nil {
		t.Error("temp file not removed")
	}
}

func mtime(sec int64) time.Time { return time.Unix(1700000000+sec, 0) }
