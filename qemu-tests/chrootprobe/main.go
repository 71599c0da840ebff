// Command chrootprobe proves it ran inside a rescue chroot: it writes
// /marker (with /proc's view of its root, to show /proc was bound) and
// prints what it wrote. The rescue test installs it as /bin/probe in a
// client filesystem.
package main

import (
	"fmt"
	"os"
)

func main() {
	root, err := os.Readlink("/proc/self/root")
	if err != nil {
		root = "no /proc: " + err.Error()
	}
	msg := fmt.Sprintf("chrooted, /proc/self/root=%s\n", root)
	if err := os.WriteFile("/marker", []byte(msg), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "chrootprobe:", err)
		os.Exit(1)
	}
	fmt.Print("PROBE: " + msg)
}
