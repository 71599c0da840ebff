package virt

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// accelProbeTimeout bounds the KVM probe boot. A working KVM gets the
// kernel to its "no root filesystem" panic in a second or two on real
// hardware; nested KVM on QEMU's emulated SVM (TCG) takes 23 to 28 s
// (measured: 8 probes in a Debian 12 VM under TCG on 2 cores, hostctl's
// earlier 20 s bound called that KVM broken and ran TCG inside TCG); a
// broken nested KVM hangs (seen: after "Probing EDD"). The answer is
// cached, so a hang costs this once per kernel and QEMU.
const accelProbeTimeout = 60 * time.Second

// panicLine is what the probe kernel prints when it finds no root.
var panicLine = []byte("Kernel panic")

// ProbeAccel says whether the appliance can use KVM here: "kvm" or "tcg".
// The mere presence of /dev/kvm proves nothing (nested KVM can hang or
// abort), so it boots the appliance kernel under KVM with no root
// filesystem and waits for the kernel's panic on the serial console. The
// answer is cached in cacheFile, keyed by kernel and QEMU binary.
func ProbeAccel(ctx context.Context, kernel, cacheFile string) (string, error) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return "tcg", nil
	}
	key, err := probeKey(kernel)
	if err != nil {
		return "", err
	}
	if data, err := os.ReadFile(cacheFile); err == nil {
		if k, v, ok := strings.Cut(strings.TrimSpace(string(data)), " "); ok && k == key {
			return v, nil
		}
	}
	accel := "tcg"
	if kvmBoots(ctx, kernel) {
		accel = "kvm"
	}
	if err := os.MkdirAll(filepath.Dir(cacheFile), 0o700); err == nil {
		_ = os.WriteFile(cacheFile, []byte(key+" "+accel+"\n"), 0o600)
	}
	return accel, nil
}

func probeKey(kernel string) (string, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return "", fmt.Errorf("probe KVM: %w", err)
	}
	var parts []string
	for _, p := range []string{kernel, qemu} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("probe KVM: %w", err)
		}
		parts = append(parts, fmt.Sprintf("%s:%d:%d", p, fi.Size(), fi.ModTime().Unix()))
	}
	return strings.ReplaceAll(strings.Join(parts, ","), " ", "_"), nil
}

// kvmBoots boots kernel under KVM with no root filesystem and reports
// whether it reached its panic. The probe kernel halts there (panic=0)
// and QEMU is killed once the line is on the serial console: the guest
// never resets. A reset is a vCPU reset in the host's KVM, and on QEMU's
// emulated SVM that path crashed or hung the hypervisor VM itself (seen,
// with panic=-1: "corrupted stack end detected inside scheduler" under
// shutdown_interception, and a VM that stopped answering; 8 probes of 8
// passed with panic=0).
func kvmBoots(ctx context.Context, kernel string) bool {
	ctx, cancel := context.WithTimeout(ctx, accelProbeTimeout)
	defer cancel()
	console := &panicWatch{found: cancel}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "kvm", "-m", "256", "-nodefaults",
		"-nographic", "-no-reboot", "-serial", "stdio", "-kernel", kernel,
		"-append", "console=ttyS0 panic=0 root=/dev/sb-probe-none")
	cmd.Stdout, cmd.Stderr = console, console
	_ = cmd.Run() // killed at the panic line, or at the timeout
	return console.seen()
}

// panicWatch watches the probe's console and calls found once it holds
// panicLine. It keeps only the tail a line split across writes needs.
type panicWatch struct {
	mu    sync.Mutex
	tail  []byte
	hit   bool
	found func()
}

func (w *panicWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hit {
		return len(p), nil
	}
	w.tail = append(w.tail, p...)
	if bytes.Contains(w.tail, panicLine) {
		w.hit, w.tail = true, nil
		w.found()
		return len(p), nil
	}
	if keep := len(panicLine) - 1; len(w.tail) > keep {
		w.tail = append(w.tail[:0:0], w.tail[len(w.tail)-keep:]...)
	}
	return len(p), nil
}

func (w *panicWatch) seen() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hit
}
