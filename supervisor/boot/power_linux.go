package boot

import (
	"time"

	"golang.org/x/sys/unix"
)

// PowerOff syncs and powers the machine off. It never returns: PID 1 must not
// exit, or the kernel panics (and with panic=-1 reboots, which the host maps
// to destroy, losing the distinction between a clean end and a crash).
func PowerOff() {
	unix.Sync()
	for {
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		time.Sleep(time.Second)
	}
}
