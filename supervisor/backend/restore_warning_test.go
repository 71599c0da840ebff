package backend

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// A restore that borg finishes with warnings (exit status 1: here a file
// whose directory in the destination is read-only; in the appliance a
// device node the 9p share cannot make) is Incomplete, naming what borg
// said, never a plain success; what it could restore is in place. The
// directory's name is a hostile guest's (terminal escapes): the warning,
// which goes to the host, carries none of its control characters.
func TestBorgRestoreWithWarnings(t *testing.T) {
	testutil.NeedTool(t, "borg", "run qemu-tests/setup-host.sh")
	testutil.NeedRoot(t)
	dir := t.TempDir()
	const roDir = "srv/ro\x1b]0;pwned\a\x1b[31m"
	d := testDirs(t, dir, roDir)
	if err := os.WriteFile(filepath.Join(d.Snapshot, roDir, "data.txt"), []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, sink, req := testRepo(t, dir, d, job.Repo{Backend: "borg", Encryption: "repokey"})
	req.Job.Backup = &job.Backup{Archive: "web-1"}
	ctx := context.Background()
	if _, err := b.Backup(ctx, req); err != nil {
		t.Fatalf("backup: %v\nlog:\n%s", err, sink)
	}

	ro := filepath.Join(d.Restore, roDir)
	if err := os.MkdirAll(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{{"mount", "--bind", ro, ro}, {"mount", "-o", "remount,bind,ro", ro}} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", argv, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("umount", ro).Run() })

	req.Archive = "web-1"
	archive, err := b.Restore(ctx, req)
	var inc *Incomplete
	if !errors.As(err, &inc) {
		t.Fatalf("restore into a tree borg cannot write whole: %v, want Incomplete\nlog:\n%s", err, sink)
	}
	if archive != "web-1" || !strings.Contains(inc.Warning, "borg extract finished with warnings (exit status 1)") || !strings.Contains(inc.Warning, "Read-only file system") {
		t.Errorf("archive %q, warning %q: want web-1 and borg's line naming the read-only tree", archive, inc.Warning)
	}
	t.Logf("warning: %s", inc.Warning)
	require.Contains(t, inc.Warning, "srv/ro?]0;pwned??[31m", "the guest's name, its control characters replaced")
	testutil.RequireNoControl(t, inc.Warning)
	if got, err := os.ReadFile(filepath.Join(d.Restore, "etc", "hostname")); err != nil || string(got) != "web\n" {
		t.Errorf("what borg could restore: %q, %v", got, err)
	}
}
