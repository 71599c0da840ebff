package runner

import (
	"testing"

	"github.com/snapshot-backup/snapshot-backup/hostctl/hooks"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// A hook's error as the runner logs it is the guest's text too.
func TestHookStatusStripsControlCharacters(t *testing.T) {
	testutil.RequireNoControl(t, hookStatus(hooks.Result{Name: "pre_snapshot", Exit: -1, Error: testutil.Hostile}))
}
