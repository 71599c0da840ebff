package layout

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/supervisor/blockdev"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
)

// DiskDevices lists disk kdev (vdc) and its partitions with what blkid
// finds on them, named as the client names the disk (clientDev, its index
// in the job).
func (l *Layout) DiskDevices(ctx context.Context, kdev, clientDev string, index int) ([]blockdev.Device, error) {
	var devs []blockdev.Device
	for _, n := range append([]string{kdev}, boot.Partitions(kdev)...) {
		if err := boot.WaitPath("/dev/"+n, 3*time.Second); err != nil {
			return nil, err
		}
		info, err := l.Probe(ctx, n)
		if err != nil {
			return nil, err
		}
		d := blockdev.Device{Dev: n, ClientDev: clientDev, Disk: index, FSType: info["TYPE"],
			Label: info["LABEL"], UUID: info["UUID"], Size: sysSize(n)}
		if n != kdev {
			d.Part, _ = strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(n, kdev), "p"))
		}
		devs = append(devs, d)
	}
	return devs, nil
}

func sysSize(n string) int64 {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", n, "size"))
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v * 512
}
