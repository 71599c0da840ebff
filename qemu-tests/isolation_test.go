package qemutests

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirtxml"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/hostctl/jobdisk"
	"github.com/snapshot-backup/snapshot-backup/hostctl/progress"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// hijack is the real hypervisor, except that the appliance whose domain
// name starts with match runs the attacker instead of its job: its job
// disk is replaced by a mode exec job, every other disk and share stays as
// hostctl made them. That is what a guest that took over its appliance
// has: the devices of its own job.
type hijack struct {
	virt.Hypervisor
	match string
	prog  []byte
	// secrets are further files for the attacker's job disk: what the
	// taken-over job's disk carried (its credentials).
	secrets map[string][]byte
	xml     string // the taken-over appliance's domain XML
	err     error
}

func (h *hijack) StartTransient(ctx context.Context, x string) error {
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		return err
	}
	if strings.HasPrefix(d.Name, h.match) {
		h.xml = x
		h.err = fmt.Errorf("no job disk in %s", d.Name)
		for _, dk := range d.Devices.Disks {
			if dk.Serial != job.SerialJob || dk.Source == nil || dk.Source.File == nil {
				continue
			}
			p := dk.Source.File.File
			j := &job.Job{Version: job.Version, Mode: job.ModeExec, Client: "attacker", RunID: "attack",
				TimeLimit: job.Duration{Duration: 5 * time.Minute},
				Exec:      &job.Exec{File: job.SecretPrefix + "attacker"}}
			files := map[string][]byte{j.Exec.File: h.prog}
			for name, data := range h.secrets {
				files[name] = data
			}
			if h.err = os.Remove(p); h.err == nil {
				h.err = jobdisk.Create(p, j, files)
			}
		}
		if h.err != nil {
			return h.err
		}
	}
	return h.Hypervisor.StartTransient(ctx, x)
}

// TestCompromisedApplianceReachesOnlyItsClient: client alpha's appliance is
// taken over (it runs the attacker, with the disks and shares hostctl gave
// alpha's job). It lists every disk it sees, reads the cache volume and
// poisons every borg cache on it so that unchanged files would be recorded
// with another file's content. It sees one cache, alpha's, and nothing of
// bravo's: bravo's next backup passes borg check on the host and restores
// equal to bravo's files.
func TestCompromisedApplianceReachesOnlyItsClient(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()
	dir := t.TempDir()

	attacker := filepath.Join(e.bin, "attacker")
	build := exec.Command("go", "build", "-o", attacker, ".")
	build.Dir, build.Env = "attacker", append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build attacker: %s", out)
	prog, err := os.ReadFile(attacker)
	require.NoError(t, err)

	// Two "self" clients, each a host directory of files that keep their
	// ctimes a second apart: borg keeps all but the newest in its files
	// cache, and trusts that cache for files that did not change.
	trees := map[string]string{}
	content := map[string]map[string][]byte{}
	for _, c := range []string{"alpha", "bravo"} {
		trees[c] = filepath.Join(dir, "host", c)
		require.NoError(t, os.MkdirAll(trees[c], 0o755))
		content[c] = map[string][]byte{}
	}
	for i := range 4 {
		for _, c := range []string{"alpha", "bravo"} {
			data := make([]byte, 5000)
			_, _ = rand.Read(data)
			name := fmt.Sprintf("f%d.bin", i)
			require.NoError(t, os.WriteFile(filepath.Join(trees[c], name), data, 0o644))
			content[c][name] = data
		}
		time.Sleep(1100 * time.Millisecond)
	}

	etc := filepath.Join(dir, "etc")
	stateDir := filepath.Join(dir, "state")
	cfgPath := writeHostConfig(t, etc, stateDir, e.imageDir, "local", e.accel)
	pass := map[string]string{"alpha": "alpha's passphrase", "bravo": "bravo's passphrase"}
	for c, p := range pass {
		require.NoError(t, os.WriteFile(filepath.Join(etc, "secrets", c+".pass"), []byte(p+"\n"), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(etc, "clients", c+".toml"), []byte(fmt.Sprintf("type = \"self\"\npaths = [%q]\n", trees[c])), 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(etc, "profiles", "local.toml"), []byte(fmt.Sprintf(`backend = "borg"
target = "file://%s/backup/{client}"
[encryption]
mode = "repokey"
passphrase_file = "secrets/{client}.pass"
`, dir)), 0o600))

	code, _, _ := hostctl(t, ctx, "run", "-c", cfgPath)
	require.Equal(t, 0, code, "first backups of alpha and bravo")

	// alpha's appliance is taken over.
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	lv, l, image, accel := applianceDeps(t, ctx, e, cfg.Host.LibvirtURI, stateDir)
	h := &hijack{Hypervisor: lv, match: "hostctl-backup-alpha-", prog: prog}
	var lines bytes.Buffer
	r := runner.New(cfg, runner.Deps{Virt: h, Ledger: l}, runner.WithImage(image, accel),
		runner.WithRunID(runner.NewRunID(time.Now().Add(time.Hour))), runner.WithOutput(&lines), runner.WithProgress(progress.NewText(&lines, false)))
	cls, err := cfg.SelectClients([]string{"alpha"})
	require.NoError(t, err)
	rep := r.Backup(ctx, cls[0])
	require.NoError(t, h.err)
	require.NotEmpty(t, h.xml, "alpha's appliance was taken over")
	t.Logf("taken-over job: %s %s\n%s", rep.Status, rep.Error, lines.String())
	// Its appliance said "ok" without having backed anything up.
	require.Equal(t, job.StatusFailed, rep.Status, "a taken-over appliance's bare ok is no backup")
	require.Contains(t, rep.Error, "no backup statistics")
	logData, err := os.ReadFile(filepath.Join(stateDir, "runs", r.RunID(), "alpha", job.FileLog))
	require.NoError(t, err)
	log := string(logData)
	t.Logf("attacker in alpha's appliance:\n%s", log)
	require.NotContains(t, log, "ATTACKER FAILED")

	// What it saw: the appliance image, its job disk and one cache, and
	// that cache is alpha's; none of bravo's files or keys.
	var serials []string
	for _, l := range strings.Split(log, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "DISK" {
			serials = append(serials, f[2])
		}
	}
	require.ElementsMatch(t, []string{job.SerialAppliance, job.SerialJob, job.SerialCache}, serials, "the disks alpha's appliance sees")
	require.Contains(t, h.xml, filepath.Join(stateDir, "caches", "alpha.qcow2"), "alpha's own cache volume")
	require.NotContains(t, h.xml, "bravo", "nothing of bravo's is attached to alpha's appliance")
	require.Contains(t, log, "CACHE /borg/alpha", "the attacker read the cache it has")
	require.NotContains(t, log, "bravo", "nothing of bravo's on alpha's cache")
	require.Contains(t, log, "POISONED", "the attacker poisoned what it could reach")
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "POISONED") {
			require.Contains(t, l, "/borg/alpha/", "only alpha's own cache was within reach")
		}
	}
	require.Empty(t, appliances(t, stateDir, false), "appliance left")

	// bravo's next backup, checked and restored on this host.
	code, _, _ = hostctl(t, ctx, "run", "-c", cfgPath, "bravo")
	require.Equal(t, 0, code, "bravo's next backup")
	repo := filepath.Join(dir, "backup", "bravo")
	archives := borgBackups(t, pass["bravo"], dir, repo)
	require.Len(t, archives, 2)
	borg(t, pass["bravo"], dir, "check", "--verify-data", repo)
	dst := filepath.Join(t.TempDir(), "bravo")
	code, _, _ = hostctl(t, ctx, "restore", "-c", cfgPath, "bravo", "--to-dir", dst, "--archive", archives[1])
	require.Equal(t, 0, code)
	for name, want := range content["bravo"] {
		got, err := os.ReadFile(filepath.Join(dst, strings.TrimPrefix(trees["bravo"], "/"), name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "bravo's %s restores as it is on the host", name)
	}
	entries, err := os.ReadDir(filepath.Join(stateDir, "ledger"))
	require.NoError(t, err)
	require.Empty(t, entries, "ledger entries left")
}
