package qemutests

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/progress"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// TestBackupAndRestore is the walking skeleton end to end: back up a client
// VM shut off and running, read the backups with borg on the host, restore
// through the appliance into a directory and into a blank disk.
func TestBackupAndRestore(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()
	c := newClient(t, e, "web", "qcow2")

	t.Run("offline", func(t *testing.T) {
		before := fileSHA256(t, c.disk)
		code, out, _ := hostctl(t, ctx, "run", "-c", c.config)
		require.Equal(t, 0, code)
		require.Equal(t, before, fileSHA256(t, c.disk), "the backup wrote to the client's disk")
		require.Contains(t, out, "web")
		require.Len(t, c.archives(t), 1)
		c.requireNothingLeft(t)
	})

	t.Run("extract-on-host", func(t *testing.T) {
		arch := c.archives(t)
		dst := t.TempDir()
		borg(t, c.pass, dst, "extract", c.repo+"::"+arch[0])
		c.requireTree(t, dst)
		list := borg(t, c.pass, dst, "list", "--format", "{path}{NL}", c.repo+"::"+arch[0])
		require.NotContains(t, list, "data/cache", "excluded directory in the archive")
		require.Contains(t, list, "data/big.bin")
	})

	t.Run("running", func(t *testing.T) {
		c.start(t)
		code, out, stderr := hostctl(t, ctx, "run", "-c", c.config, "--progress", "json")
		require.Equal(t, 0, code)
		requireProgressJSON(t, out, "web", job.ModeBackup)
		require.Regexp(t, `(?m)^CLIENT\s+STATUS`, stderr, "with --progress json the table is on stderr")
		require.True(t, c.running(t), "the client keeps running through its backup")
		arch := c.archives(t)
		require.Len(t, arch, 2)
		c.requireNothingLeft(t)
		dst := t.TempDir()
		borg(t, c.pass, dst, "extract", c.repo+"::"+arch[1])
		c.requireTree(t, dst)
	})

	t.Run("list", func(t *testing.T) {
		code, out, _ := hostctl(t, ctx, "list", "-c", c.config, "web", "--json")
		require.Equal(t, 0, code)
		var snaps []job.Snapshot
		require.NoError(t, json.Unmarshal([]byte(out), &snaps))
		var ids []string
		for _, s := range snaps {
			ids = append(ids, s.Archive)
			require.False(t, s.Time.IsZero(), "snapshot %s has no time", s.Archive)
		}
		require.Equal(t, c.archives(t), ids, "hostctl list agrees with borg list on the host")
		c.requireNothingLeft(t)
	})

	t.Run("restore-to-dir", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "restored")
		code, _, _ := hostctl(t, ctx, "restore", "-c", c.config, "web", "--to-dir", dst)
		require.Equal(t, 0, code)
		c.requireTree(t, dst)
		// The tree has the guest's owners and modes (setuid files, device
		// nodes): the directory keeps other local users out.
		fi, err := os.Stat(dst)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "restore --to-dir makes a private directory")
		c.requireNothingLeft(t)
	})

	t.Run("restore-to-disk", func(t *testing.T) {
		dir := t.TempDir()
		blank := filepath.Join(dir, "blank.raw")
		out, err := exec.Command("mkfs.ext4", "-q", "-L", "restored", blank, "400M").CombinedOutput()
		require.NoError(t, err, "%s", out)
		code, _, _ := hostctl(t, ctx, "restore", "-c", c.config, "web", "--to-disk", blank)
		require.Equal(t, 0, code)
		mnt := filepath.Join(dir, "mnt")
		require.NoError(t, os.Mkdir(mnt, 0o755))
		out, err = exec.Command("mount", "-o", "loop,ro", blank, mnt).CombinedOutput()
		require.NoError(t, err, "%s", out)
		defer exec.Command("umount", mnt).Run()
		c.requireTree(t, mnt)
		c.requireNothingLeft(t)
	})
}

// TestInterruptedRun kills hostctl while its appliance runs: SIGTERM makes
// hostctl clean up before it exits; after SIGKILL the next `hostctl
// cleanup` removes what was left. Either way the running client ends on its
// original disk with no snapshot, overlay or appliance left.
func TestInterruptedRun(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	c := newClient(t, e, "db", "raw")
	c.start(t)
	hostctlBin := filepath.Join(e.bin, "hostctl")

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(hostctlBin, "run", "-c", c.config)
			logf, err := os.Create(filepath.Join(c.dir, "run-"+sig.String()+".log"))
			require.NoError(t, err)
			defer logf.Close()
			cmd.Stdout, cmd.Stderr = logf, logf
			require.NoError(t, cmd.Start())
			waitForAppliance(t, c.stateDir, 3*time.Minute)
			require.NoError(t, cmd.Process.Signal(sig))
			err = cmd.Wait()
			log, _ := os.ReadFile(logf.Name())
			t.Logf("hostctl after %s: %v\n%s", sig, err, log)
			if sig == syscall.SIGKILL {
				// The appliance and the snapshot are still there.
				require.Len(t, appliances(t, c.stateDir, true), 1)
				code, _, _ := hostctl(t, context.Background(), "cleanup", "-c", c.config)
				require.Equal(t, 0, code)
			} else {
				require.Error(t, err, "an interrupted run does not exit 0")
			}
			require.True(t, c.running(t))
			c.requireNothingLeft(t)
		})
	}
	// And the next run succeeds.
	code, _, _ := hostctl(t, context.Background(), "run", "-c", c.config)
	require.Equal(t, 0, code)
	c.requireNothingLeft(t)
}

// requireProgressJSON checks what hostctl --progress json wrote on
// stdout: JSON lines only, each a record of client's appliance for mode,
// the appliance's steps (started and done) and its final done record, ok.
func requireProgressJSON(t *testing.T, out, client, mode string) {
	t.Helper()
	var steps, done int
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l progress.Line
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "stdout line %q is no JSON progress line", sc.Text())
		require.Equal(t, client, l.Client)
		require.Equal(t, mode, l.Mode)
		require.NotEmpty(t, l.Record.Type, "line %q", sc.Text())
		require.False(t, l.Record.Time.IsZero(), "the appliance's time, line %q", sc.Text())
		switch l.Record.Type {
		case job.RecStep:
			steps++
		case job.RecDone:
			done++
			require.NotNil(t, l.Record.Done, "line %q", sc.Text())
			require.Equal(t, job.StatusOK, l.Record.Done.Status)
		}
	}
	require.NoError(t, sc.Err())
	require.Greater(t, steps, 2, "the appliance's steps:\n%s", out)
	require.Equal(t, 1, done, "one done record:\n%s", out)
}

// waitForAppliance waits until an appliance domain is running.
func waitForAppliance(t *testing.T, stateDir string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if len(appliances(t, stateDir, true)) > 0 {
			time.Sleep(3 * time.Second) // let it get into the backup
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("no appliance domain started")
}

func fileSHA256(t testing.TB, p string) string {
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}
