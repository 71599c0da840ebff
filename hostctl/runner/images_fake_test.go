package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// fakeImages is Images without qemu-img: an overlay is a small file that
// names its base, and the fake remembers each overlay's base so that tests
// can see what the appliance reads.
type fakeImages struct {
	mu    sync.Mutex
	bases map[string]string // overlay → base
	calls []string
}

var _ Images = (*fakeImages)(nil)

func newFakeImages() *fakeImages { return &fakeImages{bases: map[string]string{}} }

func (f *fakeImages) Info(_ context.Context, path string) (*ImageInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	format := "raw"
	if filepath.Ext(path) == ".qcow2" {
		format = "qcow2"
	}
	return &ImageInfo{VirtualSize: fi.Size(), Format: format}, nil
}

func (f *fakeImages) CreateOverlay(ctx context.Context, path, base, baseFormat string) error {
	if _, err := f.Info(ctx, base); err != nil {
		return err // qemu-img reads the base's size
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bases[path] = base
	f.calls = append(f.calls, "overlay "+filepath.Base(path)+" on "+base+" ("+baseFormat+")")
	return os.WriteFile(path, []byte("overlay of "+base+"\n"), 0o600)
}

func (f *fakeImages) Create(_ context.Context, path string, size int64) error {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("create %s %d", filepath.Base(path), size))
	f.mu.Unlock()
	file, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return file.Close()
}

func (f *fakeImages) Commit(_ context.Context, overlay string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "commit "+overlay)
	return nil
}

// base is what the overlay at path was made on.
func (f *fakeImages) base(t *testing.T, path string) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bases[path]
	require.True(t, ok, "no overlay %s was made", path)
	return b
}

// TestBackupNeedsNoHostTools: with the hypervisor, LVM and the image tool
// behind fakes, a whole backup job (LV snapshot, overlays, the client's
// new cache volume, job disk, appliance, cleanup) runs with no program on
// PATH: the runner reaches the host's tools only through its Deps.
func TestBackupNeedsNoHostTools(t *testing.T) {
	j := newLVMJob(t, lvDisk)
	t.Setenv("PATH", t.TempDir())
	j.hv.onStart = func(x string) error {
		require.NoError(t, writeResult(applianceDisk(t, x), okStats, job.Done{Status: job.StatusOK}.Record()))
		delete(j.hv.live, domainName(x))
		return nil
	}
	rep := j.r.Backup(context.Background(), j.c)
	require.Equal(t, job.StatusOK, rep.Status, rep.Error)
	require.Equal(t, []string{
		"overlay vda.appliance.qcow2 on " + filepath.Join(j.lm.dir, "web-root-hostctl-20261125T000000Z") + " (raw)",
		"create web.qcow2.new 67108864",
	}, j.img.calls, "the overlay on the snapshot, then the cache volume, through Images")
	require.FileExists(t, j.r.cfg.CacheFor("web").Path)
	j.requireNothingLeft(t)
}
