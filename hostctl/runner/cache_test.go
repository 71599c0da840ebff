package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirtxml"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// applianceDisks maps the serials of an appliance domain's disks to their
// sources.
func applianceDisks(t *testing.T, x string) (name string, disks map[string]string) {
	t.Helper()
	var d libvirtxml.Domain
	require.NoError(t, d.Unmarshal(x))
	disks = map[string]string{}
	for _, dk := range d.Devices.Disks {
		src := ""
		switch {
		case dk.Source.File != nil:
			src = dk.Source.File.File
		case dk.Source.Block != nil:
			src = dk.Source.Block.Dev
		}
		disks[dk.Serial] = src
	}
	return d.Name, disks
}

// TestEachClientItsOwnCache: every client's appliance gets that client's
// cache volume and no other: a compromised appliance must not read or
// poison another client's borg cache, duplicity archive dir or plain data.
func TestEachClientItsOwnCache(t *testing.T) {
	j := newLVMJob(t, "")
	delete(j.hv.live, "web")
	delete(j.hv.inactive, "web")
	j.c.Type, j.c.Paths = config.TypeSelf, []string{t.TempDir()}
	db := &config.Client{Name: "db", Domain: "db", Type: config.TypeSelf, Paths: []string{t.TempDir()}, Profile: "p", TimeLimit: j.c.TimeLimit}
	j.r.cfg.Clients["db"] = db
	caches := map[string][]string{}
	j.hv.onStart = func(x string) error {
		name, disks := applianceDisks(t, x)
		client := strings.Split(name, "-")[2] // hostctl-backup-CLIENT-RUNID
		for serial, src := range disks {
			if serial == job.SerialCache {
				caches[client] = append(caches[client], src)
				_, err := os.Stat(src)
				require.NoError(t, err, "the cache volume exists when the appliance starts")
			}
		}
		delete(j.hv.live, name)
		return nil
	}
	for _, c := range []*config.Resolved{j.c, resolve(t, j.r.cfg, db)} {
		j.r.Backup(context.Background(), c)
	}
	require.Len(t, caches["web"], 1, "web's appliance: one cache volume")
	require.Len(t, caches["db"], 1, "db's appliance: one cache volume")
	require.NotEqual(t, caches["web"][0], caches["db"][0], "web and db share no cache volume")
	j.requireNothingLeft(t)
}

// TestCacheLVCreatedOnce: with cache.type = "lvm" a client's cache is the
// LV <vg>/hostctl-cache-<client>, made through the LVM manager on the first
// job and reused by the next, attached as a block device.
func TestCacheLVCreatedOnce(t *testing.T) {
	j := newLVMJob(t, "")
	delete(j.hv.live, "web")
	delete(j.hv.inactive, "web")
	j.c.Type, j.c.Paths = config.TypeSelf, []string{t.TempDir()}
	j.r.cfg.Host.Cache = config.Cache{Type: "lvm", VG: "vg0", Size: 64 << 20}
	var attached []string
	j.hv.onStart = func(x string) error {
		name, disks := applianceDisks(t, x)
		attached = append(attached, disks[job.SerialCache])
		require.Contains(t, x, `<source dev="`+disks[job.SerialCache]+`"></source>`, "a block device")
		delete(j.hv.live, name)
		return nil
	}
	for range 2 {
		j.r.Backup(context.Background(), j.c)
	}
	require.Equal(t, []string{"create vg0/hostctl-cache-web size 67108864"}, j.lm.calls, "created once, through lvm.Manager")
	require.Len(t, attached, 2)
	require.Equal(t, attached[0], attached[1])
	require.Equal(t, filepath.Join(j.lm.dir, "vg0-hostctl-cache-web"), attached[0])
	j.requireNothingLeft(t)
}

// TestRescueAttachesOnlyItsClientsCache: hostctl rescue CLIENT gets that
// client's cache (a plain client's files live there); a rescue of bare
// disk images gets none.
func TestRescueAttachesOnlyItsClientsCache(t *testing.T) {
	j := newLVMJob(t, fileDisk(t, t.TempDir()))
	x := j.hv.live["web"]
	delete(j.hv.live, "web") // shut off
	j.hv.inactive["web"] = x
	var caches []string
	j.hv.onStart = func(x string) error {
		name, disks := applianceDisks(t, x)
		caches = append(caches, disks[job.SerialCache])
		delete(j.hv.live, name)
		return nil
	}
	img := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(img, make([]byte, 1<<20), 0o600))
	// The fake appliance leaves no done record: both fail after it is gone.
	_ = j.r.Rescue(context.Background(), RescueOptions{Client: j.c, TimeLimit: time.Minute})
	_ = j.r.Rescue(context.Background(), RescueOptions{Disks: []string{img}, TimeLimit: time.Minute})
	require.Equal(t, []string{j.r.cfg.CacheFor("web").Path, ""}, caches)
}
