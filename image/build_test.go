package image

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
	"github.com/snapshot-backup/snapshot-backup/rootfs"
)

var (
	standInOnce sync.Once
	standInPath string
	standInErr  error
)

// standIn builds testdata/standin, a static /init that reports what it finds.
func standIn(t *testing.T) string {
	t.Helper()
	standInOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sb-standin-")
		if err != nil {
			standInErr = err
			return
		}
		standInPath = filepath.Join(dir, "init")
		_, standInErr = execx.Run(context.Background(), execx.Cmd{
			Argv: []string{"go", "build", "-o", standInPath, "./testdata/standin"},
			Env:  []string{"CGO_ENABLED=0"},
		})
	})
	if standInErr != nil {
		t.Fatalf("build stand-in init: %v", standInErr)
	}
	return standInPath
}

// fakeKernel makes a boot dir and modules root with every module of Modules.
func fakeKernel(t *testing.T) (bootDir, modulesRoot string) {
	t.Helper()
	root := t.TempDir()
	bootDir, modulesRoot = filepath.Join(root, "boot"), filepath.Join(root, "modules")
	mdir := filepath.Join(modulesRoot, "6.1.0-fake")
	os.MkdirAll(filepath.Join(mdir, "kernel"), 0o755)
	os.MkdirAll(bootDir, 0o755)
	os.WriteFile(filepath.Join(bootDir, "vmlinuz-6.1.0-fake"), []byte("fake bzImage"), 0o644)
	var dep strings.Builder
	for _, m := range append(slices.Clone(Modules), OnDemand...) {
		if m == "af_packet" {
			continue
		}
		dep.WriteString("kernel/" + m + ".ko:\n")
		os.WriteFile(filepath.Join(mdir, "kernel", m+".ko"), []byte("module "+m), 0o644)
	}
	os.WriteFile(filepath.Join(mdir, "modules.dep"), []byte(dep.String()), 0o644)
	os.WriteFile(filepath.Join(mdir, "modules.builtin"), []byte("kernel/net/packet/af_packet.ko\n"), 0o644)
	return bootDir, modulesRoot
}

func TestFindKernel(t *testing.T) {
	root := t.TempDir()
	boot, mods := filepath.Join(root, "boot"), filepath.Join(root, "mods")
	for _, v := range []string{"6.1.0-9-amd64", "6.1.0-56-amd64", "6.10.0-1-amd64", "7.0.0-1-amd64"} {
		os.MkdirAll(filepath.Join(boot), 0o755)
		os.WriteFile(filepath.Join(boot, "vmlinuz-"+v), nil, 0o644)
		if v != "7.0.0-1-amd64" { // a kernel without modules is never picked
			os.MkdirAll(filepath.Join(mods, v), 0o755)
			os.WriteFile(filepath.Join(mods, v, "modules.dep"), nil, 0o644)
		}
	}
	k, err := FindKernel(boot, mods, "", "")
	if err != nil || k.Version != "6.10.0-1-amd64" {
		t.Fatalf("FindKernel = %+v, %v", k, err)
	}
	k, err = FindKernel(boot, mods, filepath.Join(boot, "vmlinuz-6.1.0-9-amd64"), "")
	if err != nil || k.Version != "6.1.0-9-amd64" {
		t.Fatalf("explicit kernel = %+v, %v", k, err)
	}
	if _, err := FindKernel(boot, mods, filepath.Join(boot, "vmlinuz-7.0.0-1-amd64"), ""); err == nil {
		t.Fatal("no error for a kernel without modules")
	}
	if _, err := FindKernel(filepath.Join(root, "none"), mods, "", ""); err == nil || !strings.Contains(err.Error(), "linux-image-amd64") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckStatic(t *testing.T) {
	if err := checkStatic(standIn(t)); err != nil {
		t.Errorf("stand-in: %v", err)
	}
	if err := checkStatic("/bin/ls"); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("/bin/ls: %v", err)
	}
	text := filepath.Join(t.TempDir(), "x")
	os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755)
	if err := checkStatic(text); err == nil {
		t.Error("a script passes as a static binary")
	}
}

// TestBuildCache runs Build with a fake kernel and a fake rootfs step and
// checks when it rebuilds and when it returns the existing build.
func TestBuildCache(t *testing.T) {
	for _, tool := range []string{"fsck.vfat", "sfdisk"} {
		testutil.NeedTool(t, tool, "apt-get install dosfstools fdisk")
	}
	boot, mods := fakeKernel(t)
	work := t.TempDir()
	sup := filepath.Join(work, "supervisor")
	data, _ := os.ReadFile(standIn(t))
	os.WriteFile(sup, data, 0o755)
	squash := filepath.Join(work, "rootfs.sqfs")
	os.WriteFile(squash, append([]byte("hsqs"), make([]byte, 3000)...), 0o644)

	rootfsCalls := 0
	out := filepath.Join(work, "out")
	opts := Options{
		BootDir: boot, ModulesRoot: mods, SupervisorPath: sup, OutDir: out, CacheDir: filepath.Join(work, "cache"),
		rootfsKey: "key-1",
		rootfs: func(context.Context) (*rootfs.Result, error) {
			rootfsCalls++
			return &rootfs.Result{Key: "key-1", Path: squash, Size: 3004, SHA256: "x", Suite: "bookworm",
				Packages: map[string]string{"borgbackup": "1.2.4-1"}}, nil
		},
	}
	var progress strings.Builder
	opts.Progress = &progress
	ctx := context.Background()

	build := func(wantHit bool) *Manifest {
		t.Helper()
		m, err := Build(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if m.CacheHit != wantHit {
			t.Fatalf("CacheHit = %v, want %v\n%s", m.CacheHit, wantHit, progress.String())
		}
		return m
	}

	m := build(false)
	if rootfsCalls != 1 {
		t.Fatalf("rootfs step ran %d times", rootfsCalls)
	}
	for _, f := range []string{ImageFile, KernelFile, InitramfsFile, ManifestFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatal(err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(out, ".*.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	if m.JobFormat != job.Version {
		t.Errorf("manifest: job format %d, want %d (the stand-in's mark)", m.JobFormat, job.Version)
	}
	if err := CheckJobFormat(out); err != nil {
		t.Errorf("CheckJobFormat of the new build: %v", err)
	}
	if m.KernelVersion != "6.1.0-fake" || m.Inputs.RootfsKey != "key-1" || len(m.Modules) != len(Modules) ||
		m.ModulesBuiltin[0] != "af_packet" || m.RootfsInfo.Packages["borgbackup"] != "1.2.4-1" {
		t.Errorf("manifest: %+v", m)
	}
	onDisk, err := ReadManifest(out)
	if err != nil || onDisk.Image != m.Image || onDisk.InputHash != m.InputHash {
		t.Fatalf("manifest.json = %+v, %v", onDisk, err)
	}
	checkDisk(t, filepath.Join(out, ImageFile), m.Layout,
		map[string]string{ESPKernel: filepath.Join(out, KernelFile), ESPInitramfs: filepath.Join(out, InitramfsFile)}, nil)
	if !strings.Contains(progress.String(), "initramfs:") || !strings.Contains(progress.String(), "s] ") {
		t.Errorf("progress:\n%s", progress.String())
	}

	// Nothing changed: the existing build, without running the rootfs step.
	build(true)
	if rootfsCalls != 1 {
		t.Fatal("rootfs step ran on a cache hit")
	}

	// Each input change rebuilds.
	os.WriteFile(sup, append(data, "changed"...), 0o755)
	build(false)
	build(true)
	opts.rootfsKey = "key-2"
	build(false)
	opts.Force = true
	build(false)
	opts.Force = false
	build(true)
	// A damaged output rebuilds.
	os.Truncate(filepath.Join(out, ImageFile), 1<<20)
	build(false)
	os.Remove(filepath.Join(out, InitramfsFile))
	build(false)
	if rootfsCalls != 6 {
		t.Errorf("rootfs step ran %d times, want 6", rootfsCalls)
	}
}

func TestGUIDFrom(t *testing.T) {
	a, b := guidFrom("s", "disk"), guidFrom("s", "esp")
	if a == b || a != guidFrom("s", "disk") || len(a) != 36 || a[14] != '4' {
		t.Fatalf("guids %s %s", a, b)
	}
}

// TestBuildReal is the integration test: the real rootfs (mmdebstrap from the
// host's mirror), the real kernel and the supervisor, built twice; the
// second build must be a cache hit, and a build into another directory must
// reuse the cached rootfs.
func TestBuildReal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the real build takes a minute or two")
	}
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "needs root (mmdebstrap installs packages with dpkg)")
	}
	for _, tool := range []string{"mmdebstrap", "mksquashfs", "fsck.vfat", "sfdisk"} {
		testutil.NeedTool(t, tool, "apt-get install mmdebstrap squashfs-tools dosfstools fdisk")
	}
	if _, err := FindKernel("/boot", "/lib/modules", "", ""); err != nil {
		testutil.SkipOrFail(t, err.Error())
	}
	suite, err := rootfs.HostSuite("/")
	if err != nil {
		suite = rootfs.DefaultSuite
	}
	mirrors, err := rootfs.HostMirrors("/", suite)
	if err != nil {
		testutil.SkipOrFail(t, "a Debian mirror in the host's APT sources: "+err.Error())
	}
	if err := reachable(mirrors.Archive); err != nil {
		testutil.SkipOrFail(t, "network access to the Debian mirror: "+err.Error())
	}
	sup := supervisorOrStandIn(t)

	work := t.TempDir()
	var progress strings.Builder
	opts := Options{SupervisorPath: sup, OutDir: filepath.Join(work, "out"), CacheDir: filepath.Join(work, "cache"),
		TmpDir: work, Progress: &progress}
	ctx := context.Background()
	m, err := Build(ctx, opts)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Logf("cold build:\n%s", progress.String())
	if m.CacheHit || m.RootfsCacheHit {
		t.Fatalf("first build was a cache hit")
	}
	for _, p := range []string{"borgbackup", "duplicity", "restic", "gnupg", "openssh-client", "lvm2"} {
		if m.RootfsInfo.Packages[p] == "" {
			t.Errorf("manifest has no version of %s", p)
		}
	}
	checkDisk(t, filepath.Join(opts.OutDir, ImageFile), m.Layout,
		map[string]string{ESPKernel: filepath.Join(opts.OutDir, KernelFile), ESPInitramfs: filepath.Join(opts.OutDir, InitramfsFile)}, nil)
	trees, _ := filepath.Glob(filepath.Join(work, "sb-rootfs-*"))
	if len(trees) != 0 {
		t.Errorf("install tree left behind: %v", trees)
	}

	progress.Reset()
	again, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !again.CacheHit || again.InputHash != m.InputHash {
		t.Fatalf("second build not a cache hit:\n%s", progress.String())
	}

	progress.Reset()
	opts.OutDir = filepath.Join(work, "out2")
	other, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if other.CacheHit || !other.RootfsCacheHit || other.Rootfs.SHA256 != m.Rootfs.SHA256 {
		t.Fatalf("build into a new directory did not reuse the cached rootfs:\n%s", progress.String())
	}
	if strings.Contains(progress.String(), "mmdebstrap") {
		t.Errorf("mmdebstrap ran on a rootfs cache hit:\n%s", progress.String())
	}
}

// supervisorOrStandIn builds ./supervisor statically, or the stand-in when
// the supervisor does not build.
func supervisorOrStandIn(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "supervisor")
	_, err := execx.Run(context.Background(), execx.Cmd{
		Argv: []string{"go", "build", "-o", out, "../supervisor"},
		Env:  []string{"CGO_ENABLED=0"},
	})
	if err != nil {
		t.Logf("supervisor does not build, using the stand-in init: %v", err)
		return standIn(t)
	}
	return out
}

func reachable(uri string) error {
	u, err := url.Parse(uri)
	if err != nil {
		return err
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	c, err := net.DialTimeout("tcp", host, 5e9)
	if err != nil {
		return err
	}
	return c.Close()
}

// A supervisor that does not speak this hostctl's job format is refused
// before anything is built: an image of it would refuse (or misread)
// every job.
func TestBuildRefusesOtherJobFormat(t *testing.T) {
	data, err := os.ReadFile(standIn(t))
	if err != nil {
		t.Fatal(err)
	}
	mark := []byte(job.FormatMark)
	old := []byte(strings.Replace(job.FormatMark, fmt.Sprint(job.Version), "1", 1))
	none := bytes.Repeat([]byte{'x'}, len(mark))
	for name, tc := range map[string]struct {
		data []byte
		err  string
	}{
		"format 1": {bytes.ReplaceAll(data, mark, old), "speaks job format 1, this hostctl writes 2: build both from the same tree"},
		"no mark":  {bytes.ReplaceAll(data, mark, none), "no job format mark"},
	} {
		if bytes.Equal(tc.data, data) {
			t.Fatalf("%s: the stand-in has no mark to replace", name)
		}
		sup := filepath.Join(t.TempDir(), "supervisor")
		os.WriteFile(sup, tc.data, 0o755)
		out := filepath.Join(t.TempDir(), "out")
		boot, mods := fakeKernel(t)
		_, err := Build(context.Background(), Options{SupervisorPath: sup, OutDir: out, CacheDir: t.TempDir(),
			BootDir: boot, ModulesRoot: mods, rootfsKey: "k",
			rootfs: func(context.Context) (*rootfs.Result, error) { t.Fatal("built"); return nil, nil }})
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", name, err, tc.err)
		}
	}
}

// hostctl refuses an image whose supervisor speaks another job format,
// or that does not say, with what to do.
func TestCheckJobFormat(t *testing.T) {
	write := func(manifest string) string {
		dir := t.TempDir()
		if manifest != "" {
			os.WriteFile(filepath.Join(dir, ManifestFile), []byte(manifest), 0o644)
		}
		return dir
	}
	for _, tc := range []struct{ manifest, err string }{
		{fmt.Sprintf(`{"format_version": 1, "job_format": %d}`, job.Version), ""},
		{`{"format_version": 1, "job_format": 1}`, "speaks job format 1, this hostctl writes 2: run `hostctl build-image`"},
		{`{"format_version": 1}`, "speaks job format 1, this hostctl writes 2: run `hostctl build-image`"},
		{`{"format_version": 1, "job_format": 3}`, "speaks job format 3, this hostctl writes 2: run `hostctl build-image`"},
		{"", "has no manifest.json: run `hostctl build-image`"},
		{"{", "manifest.json: unexpected end of JSON input: run `hostctl build-image`"},
	} {
		dir := write(tc.manifest)
		err := CheckJobFormat(dir)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.manifest, err)
			}
			continue
		}
		if err == nil || err.Error() != "appliance image "+dir+" "+tc.err && !strings.HasSuffix(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.manifest, err, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), "appliance image "+dir) {
			t.Errorf("%s: the error names no image dir: %v", tc.manifest, err)
		}
	}
}
