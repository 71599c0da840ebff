package qemutests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/report"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// BenchmarkImageBuild measures `hostctl build-image` cold (empty userland
// cache) and cached, and the image size. Run with -benchtime 1x.
func BenchmarkImageBuild(b *testing.B) {
	e := needEnv(b)
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		build := func() time.Duration {
			start := time.Now()
			cmd := exec.Command(filepath.Join(e.bin, "hostctl"), "build-image", "--out", filepath.Join(dir, "image"),
				"--cache", filepath.Join(dir, "cache"), "--supervisor", filepath.Join(e.bin, "supervisor"), "--rescue-domain", "")
			out, err := cmd.CombinedOutput()
			require.NoError(b, err, "%s", out)
			return time.Since(start)
		}
		cold, cached := build(), build()
		fi, err := os.Stat(filepath.Join(dir, "image", "appliance.img"))
		require.NoError(b, err)
		ini, err := os.Stat(filepath.Join(dir, "image", "initramfs.img"))
		require.NoError(b, err)
		b.ReportMetric(cold.Seconds(), "cold-s")
		b.ReportMetric(cached.Seconds(), "cached-s")
		b.ReportMetric(float64(fi.Size())/(1<<20), "image-MiB")
		b.ReportMetric(float64(ini.Size())/(1<<20), "initramfs-MiB")
		fmt.Printf("image build: cold %s, cached %s; appliance.img %.1f MiB, initramfs %.1f MiB\n",
			cold.Round(100*time.Millisecond), cached.Round(time.Millisecond), float64(fi.Size())/(1<<20), float64(ini.Size())/(1<<20))
	}
}

// BenchmarkBackupJob runs a first backup of the known tree (a shut-off
// client) and reports the appliance's timings, the per-job overhead outside
// borg and borg's throughput inside the appliance next to the same borg
// command on the host over the same tree.
func BenchmarkBackupJob(b *testing.B) {
	e := needEnv(b)
	for i := 0; i < b.N; i++ {
		c := newClient(b, e, fmt.Sprintf("bench%d", i), "raw")
		code, out, _ := hostctl(b, context.Background(), "run", "--json", "-c", c.config)
		require.Equal(b, 0, code)
		var reps []report.Job
		require.NoError(b, json.Unmarshal([]byte(out), &reps))
		r := reps[0]
		require.NotNil(b, r.Stats)
		size := float64(r.Stats.OriginalSize) / (1 << 20)
		inside := size / r.Backend.Seconds()

		// The same borg create on the host, over the same tree, into a fresh repository.
		repo := filepath.Join(b.TempDir(), "repo")
		borg(b, c.pass, c.tree, "init", "--encryption=repokey", repo)
		start := time.Now()
		args := []string{"create", "--compression", "lz4", "--exclude", "pp:" + "data/cache", repo + "::bench", "."}
		borg(b, c.pass, c.tree, args...)
		host := size / time.Since(start).Seconds()

		overhead := r.Elapsed - r.Backend
		b.ReportMetric(r.ReadyIn.Seconds(), "ready-s")
		b.ReportMetric(r.ApplianceElapsed.Seconds(), "appliance-s")
		b.ReportMetric(overhead.Seconds(), "overhead-s")
		b.ReportMetric(inside, "appliance-MiB/s")
		b.ReportMetric(host, "host-MiB/s")
		b.ReportMetric(inside/host, "ratio")
		b.ReportMetric(r.PowerOff.Seconds(), "poweroff-s")
		fmt.Printf("backup job (%s, %.0f MiB): kernel start to supervisor ready %s; domain start to power-off %s; job %s, of it borg %s, overhead %s\n",
			accelUsed(c), size, r.ReadyIn.Round(100*time.Millisecond), r.ApplianceElapsed.Round(100*time.Millisecond),
			r.Elapsed.Round(100*time.Millisecond), r.Backend.Round(100*time.Millisecond), overhead.Round(100*time.Millisecond))
		fmt.Printf("appliance boot: %s; ready %s; result to domain gone (power-off) %s\n",
			bootBreakdown(b, r.LogDir), r.ReadyIn.Round(10*time.Millisecond), r.PowerOff.Round(10*time.Millisecond))
		fmt.Printf("borg throughput: appliance %.1f MiB/s, host %.1f MiB/s, ratio %.2f\n", inside, host, inside/host)
	}
}

// bootBreakdown is where an appliance's boot went: the kernel (to the
// supervisor's start, its job log says) and each step before the backend's
// (its result records), as "kernel 2.38s, load modules 1.02s, …".
func bootBreakdown(t testing.TB, logDir string) string {
	t.Helper()
	parts := []string{"kernel ?"}
	if log, err := os.ReadFile(filepath.Join(logDir, job.FileLog)); err == nil {
		if m := regexp.MustCompile(`kernel up ([0-9.]+m?s)`).FindSubmatch(log); m != nil {
			parts[0] = "kernel " + string(m[1])
		}
	}
	data, err := os.ReadFile(filepath.Join(logDir, job.FileResult))
	require.NoError(t, err)
	res, err := job.ParseResult(data)
	require.NoError(t, err)
	for _, rec := range res.Records {
		if rec.Type != job.RecStep || rec.Step.Elapsed == 0 && rec.Step.Error == "" {
			continue // a step's start
		}
		if name := rec.Step.Name; !strings.HasPrefix(name, "mount ") && name != "load modules" && name != "find disks" {
			break // the job's own work
		}
		parts = append(parts, fmt.Sprintf("%s %s", rec.Step.Name, rec.Step.Elapsed.Round(10*time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// accelUsed says which accelerator c's appliances used: the one its
// configuration names (the harness's probe), else what hostctl's own
// probe cached in the state dir.
func accelUsed(c *client) string {
	if cfg, err := os.ReadFile(c.config); err == nil {
		if m := regexp.MustCompile(`(?m)^accel = "(\w+)"`).FindSubmatch(cfg); m != nil {
			return string(m[1])
		}
	}
	data, err := os.ReadFile(filepath.Join(c.stateDir, "accel"))
	if err != nil {
		return "tcg" // no /dev/kvm: nothing probed
	}
	f := strings.Fields(string(data))
	return f[len(f)-1]
}

// BenchmarkSecondBackup backs the Full tree up twice with each backend over
// file://, the second time unchanged, and reports the time inside the
// backend and of the whole job for both and their ratios: what the caches
// on the cache volume (borg's files cache, restic's parent snapshot,
// duplicity's signatures) save. One sub-benchmark per backend
// (-bench 'SecondBackup/borg'). Run with -benchtime 1x.
func BenchmarkSecondBackup(b *testing.B) {
	e := needEnv(b)
	gk := newGPGKeys(b)
	for _, backend := range []string{"borg", "restic", "duplicity"} {
		b.Run(backend, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				secondBackup(b, e, gk, backend, i)
			}
		})
	}
}

// secondBackup is one BenchmarkSecondBackup measurement for backend.
func secondBackup(b *testing.B, e *env, gk *gpgKeys, backend string, i int) {
	c := newClient(b, e, fmt.Sprintf("second%s%d", backend, i), "raw")
	etc := filepath.Join(c.dir, "etc")
	secret := func(name, content string) string {
		p := filepath.Join(etc, "secrets", name)
		require.NoError(b, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	var profile string
	switch backend {
	case "restic":
		profile = fmt.Sprintf("backend = \"restic\"\ntarget = \"file://%s/{client}\"\n[encryption]\npassphrase_file = %q\n",
			filepath.Join(c.dir, "restic"), secret("restic.pass", "restic secret\n"))
	case "duplicity":
		profile = fmt.Sprintf("backend = \"duplicity\"\ntarget = \"file://%s/{client}\"\n[encryption]\nencrypt_keys = [%q]\nkey_files = [%q]\n",
			filepath.Join(c.dir, "dup"), gk.enc, secret("enc.asc", gk.encKey))
	}
	if profile != "" { // borg: the fixture's own profile
		require.NoError(b, os.WriteFile(filepath.Join(etc, "profiles", "local.toml"), []byte(profile), 0o600))
	}
	var reps [2]*report.Job
	for run := range reps {
		code, out, _ := hostctl(b, context.Background(), "run", "--json", "-c", c.config)
		require.Equal(b, 0, code)
		reps[run] = parseReports(b, out)[0]
	}
	first, second := reps[0], reps[1]
	backendRatio := second.Backend.Seconds() / first.Backend.Seconds()
	jobRatio := second.Elapsed.Seconds() / first.Elapsed.Seconds()
	b.ReportMetric(backendRatio, backend+"-second/first")
	b.ReportMetric(jobRatio, backend+"-job-second/first")
	// The VM record's cost on each night: storing it, inside the backend's
	// time (the supervisor logs it).
	for run, r := range reps {
		log, err := os.ReadFile(filepath.Join(r.LogDir, job.FileLog))
		require.NoError(b, err)
		m := regexp.MustCompile(`VM record stored in ([0-9.]+m?s)`).FindSubmatch(log)
		require.NotNil(b, m, "the job log says how long the VM record took")
		d, err := time.ParseDuration(string(m[1]))
		require.NoError(b, err)
		b.ReportMetric(d.Seconds()/r.Elapsed.Seconds(), fmt.Sprintf("%s-record/job-%d", backend, run+1))
		fmt.Printf("VM record, %s, backup %d: stored in %s, %.3f of the whole job (%s)\n", backend, run+1, d, d.Seconds()/r.Elapsed.Seconds(), r.Elapsed.Round(100*time.Millisecond))
	}
	fmt.Printf("second backup of unchanged data, %s over file:// (%s): %s %s then %s (ratio %.2f); whole job %s then %s (ratio %.2f)\n",
		backend, accelUsed(c), backend, first.Backend.Round(100*time.Millisecond), second.Backend.Round(100*time.Millisecond),
		backendRatio, first.Elapsed.Round(100*time.Millisecond), second.Elapsed.Round(100*time.Millisecond), jobRatio)
}
