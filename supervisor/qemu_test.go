package main

// The boot test: the real appliance image (kernel, initramfs, appliance
// disk), this package's supervisor layered over the image's /init, a backup
// of a small ext4 client disk into a 9p borg repository and a restore of it
// into a 9p directory, compared file by file with the source.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/u-root/mkuimage/cpio"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// imageFiles are the appliance image files; SB_IMAGE_DIR overrides the
// default place where `hostctl build-image` puts them.
func imageFiles() (kernel, initrd, appliance string) {
	dir := os.Getenv("SB_IMAGE_DIR")
	if dir == "" {
		dir = "/var/lib/hostctl/image"
	}
	return filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initramfs.img"), filepath.Join(dir, "appliance.img")
}

func TestQEMUBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU twice (about a minute under TCG)")
	}
	kernel, initrd, appliance := imageFiles()
	for _, f := range []string{kernel, initrd, appliance} {
		if _, err := os.Stat(f); err != nil {
			testutil.SkipOrFail(t, fmt.Sprintf("appliance image file missing (%v); run hostctl build-image or set SB_IMAGE_DIR", err))
		}
	}
	for _, tool := range []string{"qemu-system-x86_64", "mkfs.ext4", "mkfs.vfat", "mcopy", "mtype"} {
		testutil.NeedTool(t, tool, "qemu-system-x86, e2fsprogs, dosfstools, mtools")
	}
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "needs root: the 9p share is passthrough, so file owners survive the round trip")
	}

	dir := t.TempDir()
	initramfs := overlayInit(t, dir, initrd)

	// The client's filesystem: whole-disk ext4 made from a tree.
	tree := filepath.Join(dir, "tree")
	write := func(p, content string, mode os.FileMode) {
		p = filepath.Join(tree, p)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), mode))
	}
	write("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644)
	write("etc/shadow", "root:*:1::::::\n", 0o640)
	write("srv/data/a.txt", strings.Repeat("data\n", 10000), 0o644)
	write("var/cache/apt/big.bin", "excluded", 0o644)
	write("home/u/notes.tmp", "excluded by pattern", 0o600)
	write("home/u/keep.txt", "kept", 0o600)
	must(t, os.Symlink("../etc/passwd", filepath.Join(tree, "srv/link")))
	must(t, os.Link(filepath.Join(tree, "srv/data/a.txt"), filepath.Join(tree, "srv/data/hard.txt")))
	must(t, os.Chown(filepath.Join(tree, "home/u"), 1234, 5678))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(tree, "etc/passwd"), old, old))
	client := filepath.Join(dir, "client.img")
	runTool(t, "mkfs.ext4", "-q", "-L", "clientroot", "-d", tree, client, "64M")

	cache := filepath.Join(dir, "cache.img")
	must(t, os.WriteFile(cache, nil, 0o600))
	must(t, os.Truncate(cache, 1<<30))
	repo := filepath.Join(dir, "repo")
	restore := filepath.Join(dir, "restore")
	must(t, os.MkdirAll(repo, 0o700))
	must(t, os.MkdirAll(restore, 0o700))

	base := job.Job{Version: job.Version, Client: "web", RunID: "t1", TimeLimit: job.Duration{Duration: 10 * time.Minute},
		Nice: 10, IONiceClass: "idle",
		Disks: []job.Disk{{Serial: job.DiskSerialPrefix + "0", Dev: "vda"}},
		Repo: &job.Repo{Backend: "borg", Target: target.Target{Scheme: target.File, Path: repo},
			Encryption: "repokey", PassphraseFile: job.SecretPrefix + "passphrase", Compression: "lz4"}}

	// Backup.
	bj := base
	bj.Mode, bj.Backup = job.ModeBackup, &job.Backup{Archive: "web-test-1", Tree: job.Tree{Mount: "vda"}, Exclude: []string{"/var/cache", "*.tmp"}}
	res, console := boot(t, dir, kernel, initramfs, appliance, &bj, cache, repo, restore, client)
	if res.Done.Status != job.StatusOK {
		t.Fatalf("backup failed: %s\n%s", res.LastError(), console)
	}
	if st, ok := res.Stats(); !ok || st.Archive != "web-test-1" || st.OriginalSize == 0 {
		t.Errorf("backup stats = %+v", st)
	}
	t.Logf("backup: ready after %v, borg %v", res.Done.ReadyAfter, res.Done.BackendElapsed)

	// Restore of the latest archive into the 9p directory.
	rj := base
	rj.Mode, rj.Restore = job.ModeRestore, &job.Restore{To: "dir"}
	res, console = boot(t, dir, kernel, initramfs, appliance, &rj, cache, repo, restore, "")
	if res.Done.Status != job.StatusOK || res.Done.Archive != "web-test-1" {
		t.Fatalf("restore: %+v %s\n%s", res.Done, res.LastError(), console)
	}
	t.Logf("restore: ready after %v, borg %v", res.Done.ReadyAfter, res.Done.BackendElapsed)

	for _, p := range []string{"etc/passwd", "etc/shadow", "srv/data/a.txt", "home/u/keep.txt"} {
		a, _ := os.ReadFile(filepath.Join(tree, p))
		b, err := os.ReadFile(filepath.Join(restore, p))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("restored %s differs: %v", p, err)
		}
	}
	for _, p := range []string{"var/cache/apt", "home/u/notes.tmp"} {
		if _, err := os.Lstat(filepath.Join(restore, p)); err == nil {
			t.Errorf("excluded %s was restored", p)
		}
	}
	if l, err := os.Readlink(filepath.Join(restore, "srv/link")); err != nil || l != "../etc/passwd" {
		t.Errorf("symlink: %q %v", l, err)
	}
	fi, err := os.Stat(filepath.Join(restore, "etc/shadow"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("etc/shadow mode: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(restore, "etc/passwd")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("etc/passwd mtime: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(restore, "home/u")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 1234 || fi.Sys().(*syscall.Stat_t).Gid != 5678 {
		t.Errorf("home/u owner: %v", err)
	}
	a, _ := os.Stat(filepath.Join(restore, "srv/data/a.txt"))
	h, _ := os.Stat(filepath.Join(restore, "srv/data/hard.txt"))
	if a == nil || h == nil || !os.SameFile(a, h) {
		t.Error("hard link not restored as one")
	}
}

// overlayInit appends a cpio holding this package's supervisor as /init to
// the image's initramfs (the kernel unpacks concatenated archives in order,
// later entries replacing earlier ones).
func overlayInit(t *testing.T, dir, initrd string) string {
	bin := filepath.Join(dir, "supervisor")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build supervisor: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	must(t, err)
	base, err := os.ReadFile(initrd)
	must(t, err)
	var b bytes.Buffer
	b.Write(base)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	w := cpio.Newc.Writer(&b)
	must(t, cpio.WriteRecords(w, []cpio.Record{cpio.StaticFile("init", string(data), 0o755)}))
	must(t, cpio.WriteTrailer(w))
	out := filepath.Join(dir, "initramfs.img")
	must(t, os.WriteFile(out, b.Bytes(), 0o644))
	return out
}

// boot writes a job disk for j, boots the appliance and returns the parsed
// result and the console output.
func boot(t *testing.T, dir, kernel, initrd, appliance string, j *job.Job, cache, repo, restore, client string) (*job.Result, string) {
	t.Helper()
	jobImg := filepath.Join(dir, "job.img")
	os.Remove(jobImg)
	runTool(t, "mkfs.vfat", "-C", "-n", "SBJOB", jobImg, "16384")
	data, err := j.Marshal()
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, job.FileJob), data, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "passphrase"), []byte("correct horse battery\n"), 0o600))
	runTool(t, "mcopy", "-i", jobImg, filepath.Join(dir, job.FileJob), "::"+job.FileJob)
	runTool(t, "mcopy", "-i", jobImg, filepath.Join(dir, "passphrase"), "::"+j.Repo.PassphraseFile)

	drive := func(file, serial, extra string) []string {
		return []string{"-drive", "file=" + file + ",if=none,format=raw,id=" + serial + extra,
			"-device", "virtio-blk-pci,drive=" + serial + ",serial=" + serial}
	}
	args := []string{"-accel", "tcg", "-m", "1024", "-smp", "2", "-nographic", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1"}
	args = append(args, drive(appliance, job.SerialAppliance, ",readonly=on")...)
	args = append(args, drive(jobImg, job.SerialJob, "")...)
	args = append(args, drive(cache, job.SerialCache, "")...)
	if client != "" {
		args = append(args, drive(client, j.Disks[0].Serial, "")...)
	}
	args = append(args,
		"-virtfs", "local,path="+repo+",mount_tag="+job.TagTarget+",security_model=passthrough,id=t0",
		"-virtfs", "local,path="+restore+",mount_tag="+job.TagRestore+",security_model=passthrough,id=r0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("qemu: %v\n%s", err, console.String())
	}
	t.Logf("%s job: appliance ran %v", j.Mode, time.Since(start).Round(time.Second))
	out, err := exec.Command("mtype", "-i", jobImg, "::"+job.FileResult).Output()
	if err != nil {
		t.Fatalf("read result: %v\n%s", err, console.String())
	}
	res, err := job.ParseResult(out)
	if err != nil {
		t.Fatalf("result: %v\n%s\n%s", err, out, console.String())
	}
	return res, console.String()
}

func runTool(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
