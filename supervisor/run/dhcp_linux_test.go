package run

import (
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func TestLeaseNet(t *testing.T) {
	// What QEMU's user-mode DHCP server answers.
	ack, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.IPv4(10, 0, 2, 15)), dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithRouter(net.IPv4(10, 0, 2, 2)), dhcpv4.WithDNS(net.IPv4(10, 0, 2, 3)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 2, 2))), dhcpv4.WithLeaseTime(86400))
	if err != nil {
		t.Fatal(err)
	}
	r, err := LeaseNet(ack)
	if err != nil {
		t.Fatal(err)
	}
	want := job.Net{Mode: "dhcp", Address: "10.0.2.15/24", Gateway: "10.0.2.2", DNS: []string{"10.0.2.3"}}
	if r.Net.Address != want.Address || r.Net.Gateway != want.Gateway || len(r.Net.DNS) != 1 || r.Net.DNS[0] != "10.0.2.3" {
		t.Errorf("LeaseNet = %+v, want %+v", r.Net, want)
	}
	if !r.Server.Equal(net.IPv4(10, 0, 2, 2)) || r.Time != 24*time.Hour {
		t.Errorf("server %v, lease %v", r.Server, r.Time)
	}

	// No router, no DNS, no mask: the address's class mask, no gateway.
	bare, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(net.IPv4(192, 168, 7, 9)))
	r, err = LeaseNet(bare)
	if err != nil || r.Net.Address != "192.168.7.9/24" || r.Net.Gateway != "" || r.Net.DNS != nil {
		t.Errorf("bare ACK: %+v, %v", r.Net, err)
	}
	none, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
	if _, err := LeaseNet(none); err == nil {
		t.Error("an ACK without an address: no error")
	}
}
