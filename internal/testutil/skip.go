package testutil

import (
	"os"
	"testing"
)

// SkipOrFail skips the test with reason, or fails it when CI is set: in CI
// a test that could not run would be a silent pass.
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
