package run

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/snapshot-backup/snapshot-backup/supervisor/backend"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
)

// reinstallBootLoader puts the backup's boot loader back onto the
// recovered disks, so that the VM boots from its own disk: a file-level
// restore brings /boot back, but not GRUB's boot code in the first sector
// and its core image in the gap after it (or in the BIOS boot partition),
// which a blank disk lacks and which a blank install's GRUB wrote for its
// own /boot.
//
// It runs the appliance's own grub-install, with the restored /boot as
// --boot-directory: never the guest's grub-install, which would be a
// guest program running beside the repository's keys. grub-install reads
// its settings from the appliance's /etc, writes the appliance's GRUB
// modules and core image into the guest's /boot/grub, and leaves the
// restored grub.cfg as it is.
func (s *supervisor) reinstallBootLoader(ctx context.Context, lo *layOut) error {
	bl := lo.rec.BootLoader
	if bl.Kind != "grub-pc" {
		return fmt.Errorf("%s: not reinstalled (only GRUB for BIOS is); the restored EFI system partition holds its files", bl.Kind)
	}
	dev := ""
	for _, d := range lo.devs {
		if d.ClientDev == bl.Disk && d.Part == 0 && d.LV == "" {
			dev = d.Dev
		}
	}
	if dev == "" {
		return fmt.Errorf("GRUB for BIOS was on disk %s, which the recovery does not have", bl.Disk)
	}
	out, err := s.runner.Run(ctx, chroot.Cmd{Argv: []string{"grub-install", "--target=i386-pc",
		"--boot-directory=" + backend.RestoreDir + "/boot", "/dev/" + dev}})
	if err != nil {
		return fmt.Errorf("grub-install on %s: %w", bl.Disk, err)
	}
	s.rep.Logf("GRUB for BIOS reinstalled on %s: %s", bl.Disk, lastLine(string(out)))
	return nil
}

// maxWarning bounds the warning a done record carries (the host refuses
// one above 1024 bytes).
const maxWarning = 1000

// joinWarning adds warning w to the done record's warning a, on one line
// and within maxWarning bytes.
func joinWarning(a, w string) string {
	if a != "" {
		w = a + "; " + w
	}
	w = strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, w), "?")
	if len(w) > maxWarning {
		w = strings.ToValidUTF8(w[:maxWarning-len("…")], "") + "…"
	}
	return w
}
