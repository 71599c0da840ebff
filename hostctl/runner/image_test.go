package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// An appliance image whose supervisor speaks an older job format is
// refused before anything boots, with the way out.
func TestImageInRefusesOldAppliance(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"vmlinuz", "initramfs.img", "appliance.img"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644))
	}
	manifest := func(s string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(s), 0o644))
	}

	_, err := ImageIn(dir)
	require.EqualError(t, err, "appliance image "+dir+" has no manifest.json: run `hostctl build-image`")

	// As every build before the manifest said it.
	manifest(`{"format_version": 1, "built": "2026-11-01T00:00:00Z"}`)
	_, err = ImageIn(dir)
	require.EqualError(t, err, "appliance image "+dir+" speaks job format 1, this hostctl writes 2: run `hostctl build-image`")

	manifest(`{"format_version": 1, "job_format": 1}`)
	_, err = ImageIn(dir)
	require.EqualError(t, err, "appliance image "+dir+" speaks job format 1, this hostctl writes 2: run `hostctl build-image`")

	manifest(fmt.Sprintf(`{"format_version": 1, "job_format": %d}`, job.Version))
	img, err := ImageIn(dir)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(img.Disk, "appliance.img"))
}
