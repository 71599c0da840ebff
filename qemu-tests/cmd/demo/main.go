// Command demo shows snapshot-backup on a built-in demo, from scratch:
// it builds the appliance image, creates a small demo VM whose disk holds a
// known tree, backs the VM up while it runs, restores the backup into a
// directory, checks the restored tree against the original and prints the
// report. Run it as root through `qemu-tests/run.sh demo`.
//
// Everything lives under /var/lib/hostctl-demo; a second run starts over.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/snapshot-backup/snapshot-backup/qemu-tests/fixture"
)

const (
	demoDir = "/var/lib/hostctl-demo"
	vmName  = "sb-demo-web"
	client  = "demo-web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

// hostctl runs bin/hostctl with the demo's config, output to the terminal.
func hostctl(ctx context.Context, root string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(root, "bin", "hostctl"), args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Printf("$ hostctl %s\n", strings.Join(args, " "))
	return cmd.Run()
}

func virsh(args ...string) error {
	out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system", "-q"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("virsh %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func run(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root (libvirt qemu:///system)")
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	start := time.Now()
	_ = virsh("destroy", vmName)
	_ = virsh("undefine", vmName)
	for _, d := range []string{"vm", "etc", "backup", "restored"} {
		if err := os.RemoveAll(filepath.Join(demoDir, d)); err != nil {
			return err
		}
	}
	imageDir := filepath.Join(demoDir, "image")
	stateDir := filepath.Join(demoDir, "state")

	step("building the backup appliance (cached by content hash after the first time)")
	if err := hostctl(ctx, root, "build-image", "--out", imageDir, "--cache", filepath.Join(demoDir, "cache"),
		"--supervisor", filepath.Join(root, "bin", "supervisor")); err != nil {
		return err
	}

	step("creating the demo VM %s: a disk with a known tree, an idle guest", vmName)
	vmDir := filepath.Join(demoDir, "vm")
	tree := filepath.Join(vmDir, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return err
	}
	if err := fixture.MakeTree(tree); err != nil {
		return err
	}
	disk := filepath.Join(vmDir, "web.qcow2")
	if err := fixture.MakeClientDisk(ctx, tree, disk, "qcow2", 400); err != nil {
		return err
	}
	initrd := filepath.Join(vmDir, "idlevm.cpio")
	if err := fixture.IdleInitramfs(ctx, filepath.Join(root, "qemu-tests", "idlevm"), initrd); err != nil {
		return err
	}
	x, err := fixture.ClientDomain{Name: vmName, Kernel: filepath.Join(imageDir, "vmlinuz"), Initrd: initrd,
		Disk: disk, DiskFormat: "qcow2", ConsoleLog: filepath.Join(vmDir, "console.log")}.XML()
	if err != nil {
		return err
	}
	xf := filepath.Join(vmDir, "domain.xml")
	if err := os.WriteFile(xf, []byte(x), 0o644); err != nil {
		return err
	}
	if err := virsh("define", xf); err != nil {
		return err
	}
	if err := virsh("start", vmName); err != nil {
		return err
	}
	fmt.Printf("%s is running; its disk %s holds the tree of %s\n", vmName, disk, tree)

	cfg, err := fixture.Config{StateDir: stateDir, ImageDir: imageDir, TargetRoot: filepath.Join(demoDir, "backup"),
		Client: client, Domain: vmName, Exclude: []string{fixture.Excluded}, Passphrase: "demo passphrase (use your own)"}.
		Write(filepath.Join(demoDir, "etc"))
	if err != nil {
		return err
	}

	step("checking the configuration (%s)", cfg)
	if err := hostctl(ctx, root, "check", "-c", cfg); err != nil {
		return err
	}

	step("backing up the running VM: live snapshot, appliance, borg, blockcommit")
	if err := hostctl(ctx, root, "run", "-c", cfg); err != nil {
		return err
	}

	step("restoring the latest backup into a directory, through the appliance")
	restored := filepath.Join(demoDir, "restored")
	if err := hostctl(ctx, root, "restore", "-c", cfg, client, "--to-dir", restored); err != nil {
		return err
	}

	step("comparing the restored tree with the VM's (content, modes, links, mtimes)")
	want, err := fixture.Scan(tree, strings.TrimPrefix(fixture.Excluded, "/"))
	if err != nil {
		return err
	}
	got, err := fixture.Scan(restored, "lost+found")
	if err != nil {
		return err
	}
	if diff := fixture.Diff(want, got); len(diff) > 0 {
		return fmt.Errorf("restored tree differs:\n  %s", strings.Join(diff, "\n  "))
	}
	fmt.Printf("restored tree matches: %d entries; %s was excluded as configured\n", len(got), fixture.Excluded)

	step("a second backup (borg stores only what changed), with the report as JSON")
	if err := hostctl(ctx, root, "run", "-c", cfg, "--json"); err != nil {
		return err
	}
	fmt.Printf(`
Demo done in %s. Try next:
  borg list %s/backup/%s            (passphrase: see %s/etc/secrets/borg.pass)
  bin/hostctl check -c %s
  virsh console %s                  (the demo VM; Ctrl+] to leave)
Remove it all: virsh destroy %s; virsh undefine %s; rm -rf %s
`, time.Since(start).Round(time.Second), demoDir, client, demoDir, cfg, vmName, vmName, vmName, demoDir)
	return nil
}
