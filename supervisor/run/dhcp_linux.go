package run

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"golang.org/x/sys/unix"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// dhcpTimeout bounds the whole DHCP exchange: a network without a DHCP
// server fails the job's network step instead of hanging it.
const dhcpTimeout = 30 * time.Second

// dhcpResult is what the appliance takes from a lease.
type dhcpResult struct {
	Net    job.Net
	Server net.IP
	Time   time.Duration
}

// dhcpLease runs DISCOVER/OFFER/REQUEST/ACK on dev (which must be up) with
// nclient4 and returns the leased configuration. The lease is not renewed:
// the appliance lives for one job, and a DHCP server that hands the address
// to another machine before the lease ends is misconfigured.
func dhcpLease(ctx context.Context, dev string) (dhcpResult, error) {
	ctx, cancel := context.WithTimeout(ctx, dhcpTimeout)
	defer cancel()
	if err := crngReady(ctx); err != nil {
		return dhcpResult{}, err
	}
	c, err := nclient4.New(dev, nclient4.WithTimeout(5*time.Second), nclient4.WithRetry(5))
	if err != nil {
		return dhcpResult{}, err
	}
	defer c.Close()
	lease, err := c.Request(ctx)
	if err != nil {
		return dhcpResult{}, err
	}
	return LeaseNet(lease.ACK)
}

// crngReady waits until the kernel's random number generator is seeded.
// The DHCP transaction id comes from u-root's rand, which only polls
// getrandom(GRND_NONBLOCK); early in the appliance's boot, on a CPU without
// RDRAND (QEMU's TCG), nothing seeds the generator for minutes. A blocking
// getrandom makes the kernel gather jitter entropy itself (Linux ≥ 5.4) and
// returns within about a second.
func crngReady(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		_, err := unix.Getrandom(make([]byte, 4), 0)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("seed the random number generator: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the kernel's random number generator is not seeded: %w", ctx.Err())
	}
}

// LeaseNet turns a DHCP ACK into the appliance's network configuration.
func LeaseNet(ack *dhcpv4.DHCPv4) (dhcpResult, error) {
	ip := ack.YourIPAddr.To4()
	if ip == nil || ip.IsUnspecified() {
		return dhcpResult{}, fmt.Errorf("the ACK from %s assigns no address", ack.ServerIPAddr)
	}
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ip.DefaultMask()
	}
	ones, _ := mask.Size()
	r := dhcpResult{Net: job.Net{Mode: "dhcp", Address: fmt.Sprintf("%s/%d", ip, ones)},
		Server: ack.ServerIdentifier(), Time: ack.IPAddressLeaseTime(0)}
	if r.Server == nil {
		r.Server = ack.ServerIPAddr
	}
	if rt := ack.Router(); len(rt) > 0 {
		r.Net.Gateway = rt[0].String()
	}
	for _, d := range ack.DNS() {
		r.Net.DNS = append(r.Net.DNS, d.String())
	}
	return r, nil
}
