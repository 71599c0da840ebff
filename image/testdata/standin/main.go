// Command standin is a tiny /init for the image package's QEMU test: it loads
// the modules listed in /etc/sb-modules, finds the appliance disk by its
// virtio serial, mounts partition 2 (squashfs) and prints what it found as
// "SB-STANDIN key=value" lines, then powers off. It stands in for the
// supervisor so the image can be tested on its own.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func say(k string, v any) { fmt.Printf("SB-STANDIN %s=%v\n", k, v) }

func main() {
	defer func() {
		say("end", "poweroff")
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		select {}
	}()
	say("init", "started")
	// It stands in for the supervisor, whose job format mark the image
	// builder requires (job.FormatMark): it carries the same.
	say("job-format", strings.Trim(job.FormatMark, "\x00"))
	for _, m := range [][3]string{{"proc", "/proc", "proc"}, {"sys", "/sys", "sysfs"}, {"dev", "/dev", "devtmpfs"}} {
		if err := unix.Mount(m[0], m[1], m[2], 0, ""); err != nil {
			say("mount-error", m[1]+": "+err.Error())
		}
	}
	var u unix.Utsname
	unix.Uname(&u)
	kver := unix.ByteSliceToString(u.Release[:])
	data, err := os.ReadFile("/etc/sb-modules")
	if err != nil {
		say("error", err)
		return
	}
	p, err := kmodule.NewProber(kmodule.ProbeOpts{KVer: kver})
	if err != nil {
		say("error", err)
		return
	}
	load := func(data []byte) (loaded int, failed []string) {
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			if err := p.Probe(l, ""); err != nil {
				failed = append(failed, l+": "+err.Error())
				continue
			}
			loaded++
		}
		return loaded, failed
	}
	loaded, failed := load(data)
	say("modules-loaded", loaded)
	// The supervisor loads these at their filesystem's first mount; the
	// stand-in loads them all, as a rescue shell does.
	od, _ := os.ReadFile("/etc/sb-modules-on-demand")
	odLoaded, odFailed := load(od)
	say("ondemand-loaded", odLoaded)
	say("modules-failed", strings.Join(append(failed, odFailed...), "; "))

	// The disk shows up asynchronously after virtio_blk loads.
	var dev string
	for i := 0; i < 100 && dev == ""; i++ {
		serials, _ := filepath.Glob("/sys/block/*/serial")
		for _, s := range serials {
			b, _ := os.ReadFile(s)
			if strings.TrimSpace(string(b)) == "sb-appliance" {
				dev = filepath.Base(filepath.Dir(s))
			}
		}
		if dev == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	say("disk", dev)
	if dev == "" {
		return
	}
	part := "/dev/" + dev + "2"
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(part); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := unix.Mount(part, "/sysroot", "squashfs", unix.MS_RDONLY, ""); err != nil {
		say("root-mount", "error: "+err.Error())
		return
	}
	say("root-mount", "ok")
	host, err := os.ReadFile("/sysroot/etc/hostname")
	say("root-hostname", strings.TrimSpace(string(host))+errString(err))
	for _, fs := range []string{"ext4", "xfs", "btrfs", "vfat", "9p", "overlay", "virtiofs"} {
		say("fs-"+fs, hasFS(fs))
	}
}

func errString(err error) string {
	if err != nil {
		return " (" + err.Error() + ")"
	}
	return ""
}

func hasFS(name string) bool {
	b, _ := os.ReadFile("/proc/filesystems")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}
