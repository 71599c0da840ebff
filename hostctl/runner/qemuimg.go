package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
)

// imageInfo is the part of `qemu-img info --output=json` we use.
type imageInfo struct {
	VirtualSize int64  `json:"virtual-size"`
	Format      string `json:"format"`
}

// qemuImgInfo reads an image's size and format. -U (force share) lets it
// read an image a running QEMU holds locked.
func qemuImgInfo(ctx context.Context, path string) (*imageInfo, error) {
	out, err := execx.Output(ctx, "qemu-img", "info", "-U", "--output=json", path)
	if err != nil {
		return nil, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	var info imageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("qemu-img info %s: parse: %w", path, err)
	}
	return &info, nil
}

// createOverlay makes a qcow2 overlay at path on top of base. Writes through
// the overlay (journal replay in the appliance) never reach base.
func createOverlay(ctx context.Context, path, base, baseFormat string) error {
	info, err := qemuImgInfo(ctx, base)
	if err != nil {
		return err
	}
	// -u: do not open the backing file for writing or checks; its size is given.
	_, err = execx.Output(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-u",
		"-b", base, "-F", baseFormat, path, strconv.FormatInt(info.VirtualSize, 10))
	if err != nil {
		return fmt.Errorf("create overlay %s on %s: %w", path, base, err)
	}
	return nil
}

// createQcow2 makes an empty sparse qcow2 image.
func createQcow2(ctx context.Context, path string, size int64) error {
	if _, err := execx.Output(ctx, "qemu-img", "create", "-q", "-f", "qcow2", path, strconv.FormatInt(size, 10)); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// commitOverlay merges an overlay into its backing file (domain shut off).
func commitOverlay(ctx context.Context, overlay string) error {
	if _, err := execx.Output(ctx, "qemu-img", "commit", "-q", "-f", "qcow2", overlay); err != nil {
		return fmt.Errorf("commit overlay %s: %w", overlay, err)
	}
	return nil
}
