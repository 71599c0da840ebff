package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// SkipOrFail skips the test with reason, or fails it when CI is set: in CI
// a test that could not run would be a silent pass. Every test of the
// tree that cannot run without something (root, a tool, libvirtd, the
// appliance image) says so through it.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: cannot run: %s", reason)
	}
	t.Skip(reason)
}

// NeedRoot skips (fails under CI) a test that mounts or needs root otherwise.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root (mounts)")
	}
}

// NeedTool returns the path of the program tool, or skips (fails under CI)
// saying it is not installed and how to get it (hint, e.g. the package).
func NeedTool(t testing.TB, tool, hint string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		reason := tool + " is not installed"
		if hint != "" {
			reason += " (" + hint + ")"
		}
		SkipOrFail(t, reason)
	}
	return p
}
