package virt

import (
	"context"
	"fmt"
	"time"

	"libvirt.org/go/libvirt"
)

// agentTimeout bounds one guest agent round trip; long-running guest
// commands are started with guest-exec and polled, never waited on here.
const agentTimeout = 10 * time.Second

func (l *Libvirt) QemuAgentCommand(ctx context.Context, domain, cmd string) (string, error) {
	d, err := l.lookup(domain)
	if err != nil {
		return "", err
	}
	defer d.Free()
	out, err := d.QemuAgentCommand(cmd, libvirt.DomainQemuAgentCommandTimeout(agentTimeout/time.Second), 0)
	if err != nil {
		return "", fmt.Errorf("guest agent of %s: %w", domain, err)
	}
	return out, nil
}

func (l *Libvirt) FSFreeze(ctx context.Context, domain string) error {
	d, err := l.lookup(domain)
	if err != nil {
		return err
	}
	defer d.Free()
	if err := d.FSFreeze(nil, 0); err != nil {
		return fmt.Errorf("fsfreeze %s: %w", domain, err)
	}
	return nil
}

func (l *Libvirt) FSThaw(ctx context.Context, domain string) error {
	d, err := l.lookup(domain)
	if err != nil {
		return err
	}
	defer d.Free()
	if err := d.FSThaw(nil, 0); err != nil {
		return fmt.Errorf("fsthaw %s: %w", domain, err)
	}
	return nil
}
