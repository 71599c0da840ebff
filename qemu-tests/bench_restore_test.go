package qemutests

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/snapshot-backup/snapshot-backup/internal/retention"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
)

// BenchmarkRestoreJob backs the Full tree of a shut-off client up with each
// backend over file://, restores it with `hostctl restore --to-dir` and
// reports the backend's restore throughput inside the appliance (writing
// through the 9p share to the host directory) next to the same backend's
// restore run on the host from the same repository into a local
// directory, and their ratio. Run with -benchtime 1x.
func BenchmarkRestoreJob(b *testing.B) {
	e := needEnv(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		for _, backend := range []string{"borg", "restic", "duplicity"} {
			c := newClient(b, e, fmt.Sprintf("rbench%s%d", backend, i), "raw")
			etc := filepath.Join(c.dir, "etc")
			pass := filepath.Join(etc, "secrets", "borg.pass")
			target := filepath.Join(c.dir, "repos")
			require.NoError(b, os.WriteFile(filepath.Join(etc, "profiles", "local.toml"), []byte(fmt.Sprintf(
				"backend = %q\ntarget = \"file://%s/{client}\"\n[encryption]\nmode = \"repokey\"\npassphrase_file = %q\n",
				backend, target, pass)), 0o600))
			code, out, _ := hostctl(b, ctx, "run", "--json", "-c", c.config)
			require.Equal(b, 0, code)
			backup := parseReports(b, out)[0]
			require.NotNil(b, backup.Stats)
			size := float64(backup.Stats.OriginalSize) / (1 << 20)
			if size == 0 { // duplicity's statistics may be missing: the tree's own size
				size = float64(treeBytes(b, c.tree)) / (1 << 20)
			}

			dst := filepath.Join(b.TempDir(), "restored")
			code, out, _ = hostctl(b, ctx, "restore", "-c", c.config, c.name, "--to-dir", dst, "--json")
			require.Equal(b, 0, code)
			var rep report.Job
			require.NoError(b, json.Unmarshal([]byte(out), &rep))
			r := rep.Backend
			inside := size / r.Seconds()

			repo := filepath.Join(target, c.name)
			hostDst := filepath.Join(b.TempDir(), "host")
			require.NoError(b, os.MkdirAll(hostDst, 0o700))
			start := time.Now()
			hostRestore(b, backend, repo, c.pass, hostDst)
			host := size / time.Since(start).Seconds()

			b.ReportMetric(inside, backend+"-appliance-MiB/s")
			b.ReportMetric(host, backend+"-host-MiB/s")
			b.ReportMetric(inside/host, backend+"-ratio")
			fmt.Printf("%s restore of %.0f MiB (%s): appliance %.1f MiB/s (%s in %s, to a host dir over 9p), host %.1f MiB/s, ratio %.2f\n",
				backend, size, accelUsed(c), inside, r.Round(100*time.Millisecond), backend, host, inside/host)
		}
	}
}

// hostRestore runs the backend's own restore of the latest backup on the host.
func hostRestore(b *testing.B, backend, repo, pass, dst string) {
	b.Helper()
	var cmd *exec.Cmd
	switch backend {
	case "borg":
		archives := borgBackups(b, pass, dst, repo)
		borg(b, pass, dst, "extract", "--numeric-ids", repo+"::"+archives[len(archives)-1])
		return
	case "restic":
		cmd = exec.Command("restic", "--repo", repo, "--cache-dir", b.TempDir(), "restore", "latest", "--tag", retention.ResticTag, "--target", dst)
		cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+pass)
	case "duplicity":
		cmd = exec.Command("duplicity", "restore", "--archive-dir", b.TempDir(), "--force", "file://"+repo, dst)
		cmd.Env = append(os.Environ(), "PASSPHRASE="+pass)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "%s restore on the host: %s", backend, out)
}

func treeBytes(b *testing.B, root string) int64 {
	var n int64
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
