// Package qemutests runs hostctl end to end: real libvirtd and QEMU (TCG
// where KVM does not work), the real appliance image, borg, and a client VM.
// Needs root; run through `qemu-tests/run.sh test`, which installs and
// starts what is needed. Without root or libvirtd the tests skip with the
// reason, and fail instead when CI is set.
//
// Every top-level test calls t.Parallel: each has its own client domain,
// state dir, target and servers (names carry runTag, leftover checks are
// scoped to the test's state dir), so with go test's default -parallel
// (GOMAXPROCS) two tests share the 2 cores of a CI machine, one appliance
// mostly waiting on I/O while the other computes.
package qemutests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/cli"
	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

// runTag makes the libvirt names of this test process unique, so two test
// runs on one machine (two developers, two worktrees) do not collide.
var runTag = strconv.Itoa(os.Getpid())

// rescueDomain is the tests' rescue appliance (build-image defines it).
var rescueDomain = "sbtest-rescue-" + runTag

// testDomain is the libvirt name of a test client VM.
func testDomain(name string) string { return "sbtest-" + name + "-" + runTag }

// TestMain removes the per-run rescue domain that build-image defined.
func TestMain(m *testing.M) {
	code := m.Run()
	exec.Command("virsh", "-c", "qemu:///system", "destroy", rescueDomain).Run()
	exec.Command("virsh", "-c", "qemu:///system", "undefine", rescueDomain).Run()
	os.Exit(code)
}

// appliances lists the appliance domains (all, or only running ones) of the
// hostctl whose state dir is stateDir: their job disks live under it. Other
// test runs on the same machine have their own state dirs.
func appliances(t testing.TB, stateDir string, running bool) []string {
	t.Helper()
	args := []string{"list", "--all", "--name"}
	if running {
		args = []string{"list", "--name"}
	}
	var found []string
	for _, n := range strings.Fields(virsh(t, args...)) {
		if !strings.HasPrefix(n, "hostctl-") {
			continue
		}
		x, err := exec.Command("virsh", "-c", "qemu:///system", "dumpxml", n).Output()
		if err == nil && strings.Contains(string(x), stateDir+"/") {
			found = append(found, n)
		}
	}
	return found
}

// env is what every test shares: built binaries and the appliance image.
type env struct {
	bin      string // directory with hostctl and supervisor
	imageDir string
	idle     string // the idle client VM's initramfs
	kernel   string
	// accel is the appliance accelerator, probed once per test process
	// (cached beside the image). The tests' configs name it: hostctl's
	// own probe caches per state_dir, and a test's state_dir is new, so
	// each test would probe again, and where /dev/kvm exists but KVM
	// hangs (this machine) a probe holds a core for its full 60 s.
	accel string
}

// shared is the env, built by the first test that needs it.
var shared fixtureOnce[*env]

// fixtureOnce is something the tests share that takes long to build (the
// env, a client VM's initramfs): built once per test process by the first
// test that needs it; a failed build fails each test that needs it.
type fixtureOnce[T any] struct {
	once sync.Once
	v    T
	err  error
}

// get builds the fixture (on the first call) and returns it.
func (f *fixtureOnce[T]) get(t testing.TB, build func() (T, error)) T {
	t.Helper()
	f.once.Do(func() { f.v, f.err = build() })
	require.NoError(t, f.err)
	return f.v
}

// buildVM builds a client VM's initramfs for a fixtureOnce, printing the
// builder's lines with the prefix name and how long it took.
func buildVM[T any](name, what string, build func(ctx context.Context, root string, logf func(string, ...any)) (T, error)) func() (T, error) {
	return func() (T, error) {
		root, _ := filepath.Abs("..")
		start := time.Now()
		v, err := build(context.Background(), root, func(f string, a ...any) { fmt.Printf(name+": "+f+"\n", a...) })
		fmt.Printf("%s ready in %s\n", what, time.Since(start).Round(time.Millisecond))
		return v, err
	}
}

// needTools skips (fails under CI) when a host tool a test needs is
// missing, saying where the tests' tools come from.
func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		testutil.NeedTool(t, tool, "run qemu-tests/setup-host.sh")
	}
}

// needEnv checks the preconditions and builds (once) the binaries and the
// appliance image, which build-image caches by content hash.
func needEnv(t testing.TB) *env {
	t.Helper()
	needLibvirt(t)
	needTools(t, "qemu-system-x86_64", "qemu-img", "mkfs.ext4", "borg", "mmdebstrap", "mksquashfs")
	return shared.get(t, buildEnv)
}

func buildEnv() (*env, error) {
	ctx := context.Background()
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	e := &env{bin: filepath.Join(root, "bin", "qemu-tests")}
	e.imageDir = os.Getenv("SB_TEST_IMAGE_DIR")
	if e.imageDir == "" {
		e.imageDir = "/var/cache/snapshot-backup/test-image"
	}
	if err := os.MkdirAll(e.bin, 0o755); err != nil {
		return nil, err
	}
	// The same flags as the Makefile: an identical supervisor keeps the
	// image build a cache hit.
	for _, b := range []struct {
		out, pkg, cgo string
		flags         []string
	}{
		{"hostctl", "./hostctl", "1", nil},
		{"supervisor", "./supervisor", "0", []string{"-trimpath", "-ldflags=-s -w"}},
	} {
		args := append(append([]string{"build"}, b.flags...), "-o", filepath.Join(e.bin, b.out), b.pkg)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED="+b.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v: %s", b.pkg, err, out)
		}
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, filepath.Join(e.bin, "hostctl"), "build-image", "--out", e.imageDir,
		"--cache", filepath.Join(filepath.Dir(e.imageDir), "rootfs-cache"), "--rescue-domain", rescueDomain)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("hostctl build-image: %v:\n%s", err, out.String())
	}
	fmt.Printf("appliance image ready in %s (%s)\n", time.Since(start).Round(time.Millisecond), e.imageDir)
	e.kernel = filepath.Join(e.imageDir, "vmlinuz")
	start = time.Now()
	if e.accel, err = virt.ProbeAccel(ctx, e.kernel, filepath.Join(filepath.Dir(e.imageDir), "accel")); err != nil {
		return nil, err
	}
	fmt.Printf("appliance accelerator: %s (probed or cached in %s)\n", e.accel, time.Since(start).Round(time.Millisecond))
	e.idle = filepath.Join(e.bin, "idlevm.cpio")
	if err := fixture.IdleInitramfs(ctx, filepath.Join(root, "qemu-tests", "idlevm"), e.idle); err != nil {
		return nil, fmt.Errorf("idle VM initramfs: %w", err)
	}
	return e, nil
}

// hostctl runs the CLI in-process with its own streams. The commands
// that boot appliances print their progress as text (stderr is no
// terminal here, where the default is none) unless args choose a form:
// the tests read the appliance's steps there, and their logs show them.
func hostctl(t testing.TB, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	args = progressText(args)
	var out, errb bytes.Buffer
	code := cli.Main(ctx, args, strings.NewReader(""), &out, &errb)
	t.Logf("hostctl %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// applianceDeps opens what a runner.Runner needs, besides its
// configuration, to boot appliances as hostctl's session does: libvirt
// (closed when the test ends), the ledger in stateDir, the test image and
// its accelerator. For the tests that give the runner a hypervisor or LVM
// of their own.
func applianceDeps(t testing.TB, ctx context.Context, e *env, uri, stateDir string) (*virt.Libvirt, *ledger.Ledger, runner.Image, string) {
	t.Helper()
	lv, err := virt.NewLibvirt(uri)
	require.NoError(t, err)
	t.Cleanup(func() { lv.Close() })
	l, err := ledger.Open(filepath.Join(stateDir, "ledger"))
	require.NoError(t, err)
	image, err := runner.ImageIn(e.imageDir)
	require.NoError(t, err)
	return lv, l, image, e.accel
}

// progressText adds --progress text to the commands that have the flag
// when args do not set it.
func progressText(args []string) []string {
	if len(args) == 0 || !slices.Contains([]string{"run", "restore", "verify", "list", "recover"}, args[0]) {
		return args
	}
	for _, a := range args {
		if a == "--progress" || strings.HasPrefix(a, "--progress=") {
			return args
		}
	}
	return append(slices.Clip(args), "--progress", "text")
}

func virsh(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput()
	require.NoError(t, err, "virsh %v: %s", args, out)
	return string(out)
}

// borgEnv is the environment for running borg on the host against a test repository.
func borgEnv(t testing.TB, pass string) []string {
	return append(os.Environ(), "BORG_PASSPHRASE="+pass, "BORG_BASE_DIR="+t.TempDir(),
		"BORG_RELOCATED_REPO_ACCESS_IS_OK=yes", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes")
}

func borg(t testing.TB, pass, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("borg", args...)
	cmd.Env, cmd.Dir = borgEnv(t, pass), dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "borg %v: %s", args, out)
	return string(out)
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
