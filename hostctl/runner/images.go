package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
)

// Images is what the runner does with disk image files: the host's
// qemu-img (QemuImg), or a fake in the tests.
type Images interface {
	// Info reads an image's size and format, also of one a running QEMU
	// holds locked.
	Info(ctx context.Context, path string) (*ImageInfo, error)
	// CreateOverlay makes a qcow2 overlay at path on top of base: writes
	// through it never reach base.
	CreateOverlay(ctx context.Context, path, base, baseFormat string) error
	// Create makes an empty sparse qcow2 image of size bytes.
	Create(ctx context.Context, path string, size int64) error
	// Commit merges an overlay into its backing file (domain shut off).
	Commit(ctx context.Context, overlay string) error
}

// ImageInfo is the part of `qemu-img info --output=json` the runner uses.
type ImageInfo struct {
	VirtualSize int64  `json:"virtual-size"`
	Format      string `json:"format"`
}

// QemuImg is Images on the qemu-img tool, through the one exec helper.
type QemuImg struct{}

var _ Images = QemuImg{}

// Info runs qemu-img info; -U (force share) lets it read an image a
// running QEMU holds locked.
func (QemuImg) Info(ctx context.Context, path string) (*ImageInfo, error) {
	out, err := execx.Output(ctx, "qemu-img", "info", "-U", "--output=json", path)
	if err != nil {
		return nil, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	var info ImageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("qemu-img info %s: parse: %w", path, err)
	}
	return &info, nil
}

func (q QemuImg) CreateOverlay(ctx context.Context, path, base, baseFormat string) error {
	info, err := q.Info(ctx, base)
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

func (QemuImg) Create(ctx context.Context, path string, size int64) error {
	if _, err := execx.Output(ctx, "qemu-img", "create", "-q", "-f", "qcow2", path, strconv.FormatInt(size, 10)); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

func (QemuImg) Commit(ctx context.Context, overlay string) error {
	if _, err := execx.Output(ctx, "qemu-img", "commit", "-q", "-f", "qcow2", overlay); err != nil {
		return fmt.Errorf("commit overlay %s: %w", overlay, err)
	}
	return nil
}
