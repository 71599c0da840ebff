// Package guestinit is what the test guests' inits (agentvm, bootvm)
// share: finding the guest agent's port without udev, and running
// qemu-guest-agent.
package guestinit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// AgentPort finds the guest agent's virtio-serial port by its name in
// sysfs: without udev there is no /dev/virtio-ports symlink.
func AgentPort(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, n := range names {
			if b, _ := os.ReadFile(n); strings.TrimSpace(string(b)) == "org.qemu.guest_agent.0" {
				return "/dev/" + filepath.Base(filepath.Dir(n)), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no virtio-serial port org.qemu.guest_agent.0 after %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StartAgent starts qemu-ga on its port (its pid in /run/qemu-ga.pid),
// chrooted into root unless root is "" or "/".
func StartAgent(root string) error {
	port, err := AgentPort(20 * time.Second)
	if err != nil {
		return err
	}
	ga := exec.Command("/usr/sbin/qemu-ga", "-m", "virtio-serial", "-p", port, "-f", "/run/qemu-ga.pid", "-t", "/run")
	ga.Dir = "/"
	ga.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	ga.Stdout, ga.Stderr = os.Stdout, os.Stdout
	if root != "" && root != "/" {
		ga.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	}
	if err := ga.Start(); err != nil {
		return fmt.Errorf("start qemu-ga: %w", err)
	}
	return nil
}
