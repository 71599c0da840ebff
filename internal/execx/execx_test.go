package execx

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestExitCode: the exit code of a command that exited, found through
// wrapping; -1 for one that did not start and for an error of another kind.
func TestExitCode(t *testing.T) {
	ctx := context.Background()
	_, err := Run(ctx, Cmd{Argv: []string{"sh", "-c", "exit 3"}})
	if got := ExitCode(fmt.Errorf("restic backup: %w", err)); got != 3 {
		t.Errorf("ExitCode(exit 3, wrapped) = %d (%v)", got, err)
	}
	_, err = Run(ctx, Cmd{Argv: []string{"/nonexistent/tool"}})
	if err == nil || ExitCode(err) != -1 {
		t.Errorf("ExitCode(not started) = %d (%v), want -1", ExitCode(err), err)
	}
	if got := ExitCode(errors.New("exit status 2")); got != -1 {
		t.Errorf("ExitCode(another error) = %d, want -1", got)
	}
	if _, err := Run(ctx, Cmd{Argv: []string{"true"}}); err != nil || ExitCode(err) != -1 {
		t.Errorf("ExitCode(nil) = %d (%v), want -1", ExitCode(err), err)
	}
}
