package testutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
)

// FragmentedFile writes a sparse file of pieces 4 KiB pieces, 64 KiB apart:
// each piece is an extent of its own, more than an inode holds in itself,
// so ext4 keeps them in an extent tree block (see CorruptExtentTree).
func FragmentedFile(p string, pieces int) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	piece := make([]byte, 4096)
	for i := range piece {
		piece[i] = byte('a' + i%26)
	}
	for i := 0; i < pieces; i++ {
		if _, err := f.WriteAt(piece, int64(i)*64<<10); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

var (
	extentTreeBlock = regexp.MustCompile(`\(ETB0\):\s*([0-9]+)`)
	blockSize       = regexp.MustCompile(`(?m)^Block size:\s+([0-9]+)`)
)

// CorruptExtentTree zeroes the extent tree block of the file rel (a path
// in the filesystem, without a leading slash; made by FragmentedFile) in
// the ext4 image: the file's inode stays intact (ls and stat work), but
// reading its data fails with an I/O error, as it does on a disk with a
// bad block. Even root cannot read it, which is what a backup running as
// root in the appliance needs to meet an unreadable file.
func CorruptExtentTree(ctx context.Context, image, rel string) error {
	st, err := execx.Output(ctx, "debugfs", "-R", "stat /"+rel, image)
	if err != nil {
		return err
	}
	m := extentTreeBlock.FindSubmatch(st)
	if m == nil {
		return fmt.Errorf("%s in %s has no extent tree block (too few extents?):\n%s", rel, image, st)
	}
	blk, _ := strconv.ParseInt(string(m[1]), 10, 64)
	stats, err := execx.Output(ctx, "debugfs", "-R", "stats", image)
	if err != nil {
		return err
	}
	m = blockSize.FindSubmatch(stats)
	if m == nil {
		return fmt.Errorf("no block size in the superblock of %s", image)
	}
	bs, _ := strconv.ParseInt(string(m[1]), 10, 64)
	f, err := os.OpenFile(image, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(make([]byte, bs), blk*bs); err != nil {
		f.Close()
		return fmt.Errorf("zero block %d of %s: %w", blk, image, err)
	}
	return f.Close()
}

// MountUnreadable mounts at dir (which must exist) a small ext4 image
// (made in tmp, loop-mounted read-only, unmounted at the end of the test)
// that holds ok.txt and bad.bin, a file whose data cannot be read. It
// returns bad.bin's path relative to dir. It needs root, a loop device,
// mkfs.ext4 and debugfs, and skips (fails under CI) without them.
func MountUnreadable(t testing.TB, tmp, dir string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root for a loop mount")
	}
	for _, tool := range []string{"mkfs.ext4", "debugfs", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			SkipOrFail(t, tool+" is not installed")
		}
	}
	ctx := context.Background()
	tree := filepath.Join(tmp, "unreadable-tree")
	require.NoError(t, os.MkdirAll(tree, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "ok.txt"), []byte("readable\n"), 0o644))
	require.NoError(t, FragmentedFile(filepath.Join(tree, "bad.bin"), 12))
	img := filepath.Join(tmp, "unreadable.ext4")
	_, err := execx.Output(ctx, "mkfs.ext4", "-q", "-F", "-d", tree, img, "8M")
	require.NoError(t, err)
	require.NoError(t, CorruptExtentTree(ctx, img, "bad.bin"))
	if _, err := execx.Output(ctx, "mount", "-o", "loop,ro", img, dir); err != nil {
		SkipOrFail(t, fmt.Sprintf("loop mount: %v", err))
	}
	t.Cleanup(func() { _, _ = execx.Output(context.Background(), "umount", dir) })
	return "bad.bin"
}
