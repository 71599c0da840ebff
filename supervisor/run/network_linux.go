package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/supervisor/boot"
	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
)

// setupNetwork brings up the appliance's one NIC with the job's static
// address (libvirt user-mode networking: 10.0.2.15/24 via 10.0.2.2 by
// default) or one leased by DHCP, using ip(8) from the userland, and
// writes resolv.conf.
func (s *supervisor) setupNetwork(ctx context.Context, n *job.Net) error {
	boot.LoadOnDemand("network", boot.NetworkModules, s.rep.Logf)
	dev, err := firstNIC("/sys/class/net")
	for deadline := time.Now().Add(nicWait); err != nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond) // the driver registers the NIC as it binds
		dev, err = firstNIC("/sys/class/net")
	}
	if err != nil {
		return err
	}
	how := "static"
	if n.Mode == "dhcp" {
		if _, err := s.runner.Run(ctx, chroot.Cmd{Argv: []string{"ip", "link", "set", dev, "up"}}); err != nil {
			return fmt.Errorf("network %s: %w", dev, err)
		}
		lease, err := dhcpLease(ctx, dev)
		if err != nil {
			return fmt.Errorf("network %s: dhcp: %w", dev, err)
		}
		how = fmt.Sprintf("dhcp from %s, lease %s", lease.Server, lease.Time)
		leased := lease.Net
		if len(n.DNS) > 0 {
			leased.DNS = n.DNS
		}
		n = &leased
	}
	for _, argv := range NetworkCommands(dev, n) {
		if _, err := s.runner.Run(ctx, chroot.Cmd{Argv: argv}); err != nil {
			return fmt.Errorf("network %s: %w", dev, err)
		}
	}
	var rc strings.Builder
	for _, d := range n.DNS {
		fmt.Fprintf(&rc, "nameserver %s\n", d)
	}
	etc := filepath.Join(Sysroot, "etc")
	_ = os.Remove(filepath.Join(etc, "resolv.conf")) // may be a dangling symlink
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte(rc.String()), 0o644); err != nil {
		return err
	}
	s.rep.Logf("network: %s %s via %s, dns %s (%s)", dev, n.Address, n.Gateway, strings.Join(n.DNS, " "), how)
	return nil
}

// NetworkCommands are the ip(8) invocations for a static configuration.
func NetworkCommands(dev string, n *job.Net) [][]string {
	cmds := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "set", dev, "up"},
		{"ip", "address", "add", n.Address, "dev", dev},
	}
	if n.Gateway != "" {
		cmds = append(cmds, []string{"ip", "route", "add", "default", "via", n.Gateway, "dev", dev})
	}
	return cmds
}

// nicWait bounds the wait for the NIC once its driver is loaded.
const nicWait = 5 * time.Second

// firstNIC is the first network interface besides lo (the kernel names
// it; there is no udev to rename it).
func firstNIC(sys string) (string, error) {
	entries, err := os.ReadDir(sys)
	if err != nil {
		return "", fmt.Errorf("network interfaces: %w", err)
	}
	for _, e := range entries {
		if e.Name() != "lo" {
			return e.Name(), nil
		}
	}
	return "", fmt.Errorf("no network interface: virtio_net not loaded, or the appliance has no NIC")
}
