package runner

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func TestLVMHostClient(t *testing.T) {
	j := newLVMJob(t, "")
	delete(j.hv.live, "web")
	delete(j.hv.inactive, "web") // no domain at all
	j.lm.byDev["vg0/web-root"] = "vg0/web-root"
	j.c.Type, j.c.HostDevice, j.c.TargetDevice = config.TypeLVMHost, "vg0/web-root", "vdb"
	var applianceXML string
	j.hv.onStart = func(x string) error {
		applianceXML = x
		base := j.img.base(t, filepath.Join(j.r.jobDir("web"), "vdb.appliance.qcow2"))
		require.Contains(t, base, "web-root-hostctl-20261125T000000Z", "the appliance reads the snapshot")
		delete(j.hv.live, x[strings.Index(x, "<name>")+6:strings.Index(x, "</name>")]) // powered off, no result
		return nil
	}
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Contains(t, rep.Error, "done record")
	require.Equal(t, "lvm-snapshot", rep.Mode)
	require.NotEmpty(t, applianceXML)
	require.Equal(t, []string{
		"snapshot vg0/web-root-hostctl-20261125T000000Z of web-root size 2147483648",
		"remove vg0/web-root-hostctl-20261125T000000Z",
	}, j.lm.calls)
	j.requireNothingLeft(t)
}

func TestLVMHostClientNotAnLV(t *testing.T) {
	j := newLVMJob(t, "")
	j.c.Type, j.c.HostDevice, j.c.TargetDevice = config.TypeLVMHost, "vg0/nope", "vda"
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, job.StatusFailed, rep.Status)
	require.Contains(t, rep.Error, "host_device vg0/nope")
	j.requireNothingLeft(t)
}

func TestSelfClientSharesReadOnly(t *testing.T) {
	j := newLVMJob(t, "")
	delete(j.hv.live, "web")
	delete(j.hv.inactive, "web")
	a, b := t.TempDir(), t.TempDir()
	j.c.Type, j.c.Paths = config.TypeSelf, []string{a, b}
	var applianceXML string
	j.hv.onStart = func(x string) error {
		applianceXML = x
		delete(j.hv.live, x[strings.Index(x, "<name>")+6:strings.Index(x, "</name>")])
		return nil
	}
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, job.StatusFailed, rep.Status) // the fake appliance writes no result
	require.Equal(t, "host-paths", rep.Mode)
	for _, p := range []string{a, b} {
		i := strings.Index(applianceXML, `<source dir="`+p+`"></source>`)
		require.Positive(t, i, "share of %s in\n%s", p, applianceXML)
		fs := applianceXML[strings.LastIndex(applianceXML[:i], "<filesystem"):]
		fs = fs[:strings.Index(fs, "</filesystem>")]
		require.Contains(t, fs, "<readonly></readonly>")
		require.Contains(t, fs, selfShareTag(0)[:6])
	}
	require.NotContains(t, applianceXML, `dev="vdc"`, "no client disk")
	j.requireNothingLeft(t)
}
