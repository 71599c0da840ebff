package virt

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"libvirt.org/go/libvirt"
)

// Libvirt implements Hypervisor over a libvirt connection.
type Libvirt struct {
	URI  string
	mu   sync.Mutex
	conn *libvirt.Connect
}

var _ Hypervisor = (*Libvirt)(nil)

// NewLibvirt connects to uri (e.g. qemu:///system).
func NewLibvirt(uri string) (*Libvirt, error) {
	conn, err := libvirt.NewConnect(uri)
	if err != nil {
		return nil, fmt.Errorf("connect to libvirt %s: %w", uri, err)
	}
	return &Libvirt{URI: uri, conn: conn}, nil
}

// Close closes the connection.
func (l *Libvirt) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	_, err := l.conn.Close()
	l.conn = nil
	return err
}

func isNoDomain(err error) bool {
	var lerr libvirt.Error
	return errors.As(err, &lerr) && lerr.Code == libvirt.ERR_NO_DOMAIN
}

func (l *Libvirt) lookup(name string) (*libvirt.Domain, error) {
	d, err := l.conn.LookupDomainByName(name)
	if err != nil {
		if isNoDomain(err) {
			return nil, fmt.Errorf("domain %s: %w", name, ErrNoDomain)
		}
		return nil, fmt.Errorf("look up domain %s: %w", name, err)
	}
	return d, nil
}

func (l *Libvirt) DomainXML(ctx context.Context, name string) (string, bool, error) {
	d, err := l.lookup(name)
	if err != nil {
		return "", false, err
	}
	defer d.Free()
	state, _, err := d.GetState()
	if err != nil {
		return "", false, fmt.Errorf("state of domain %s: %w", name, err)
	}
	running := state != libvirt.DOMAIN_SHUTOFF && state != libvirt.DOMAIN_CRASHED && state != libvirt.DOMAIN_NOSTATE
	xml, err := d.GetXMLDesc(0)
	if err != nil {
		return "", false, fmt.Errorf("XML of domain %s: %w", name, err)
	}
	return xml, running, nil
}

func (l *Libvirt) InactiveXML(ctx context.Context, name string) (string, error) {
	d, err := l.lookup(name)
	if err != nil {
		return "", err
	}
	defer d.Free()
	xml, err := d.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
	if err != nil {
		return "", fmt.Errorf("inactive XML of domain %s: %w", name, err)
	}
	return xml, nil
}

func (l *Libvirt) Define(ctx context.Context, xml string) error {
	d, err := l.conn.DomainDefineXML(xml)
	if err != nil {
		return fmt.Errorf("define domain: %w", err)
	}
	return d.Free()
}

func (l *Libvirt) Undefine(ctx context.Context, name string) error {
	d, err := l.lookup(name)
	if errors.Is(err, ErrNoDomain) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Free()
	if err := d.UndefineFlags(libvirt.DOMAIN_UNDEFINE_NVRAM); err != nil && !isNoDomain(err) {
		return fmt.Errorf("undefine domain %s: %w", name, err)
	}
	return nil
}

func (l *Libvirt) StartTransient(ctx context.Context, xml string) error {
	d, err := l.conn.DomainCreateXML(xml, 0)
	if err != nil {
		return fmt.Errorf("start transient domain: %w", err)
	}
	return d.Free()
}

func (l *Libvirt) Destroy(ctx context.Context, name string) error {
	d, err := l.lookup(name)
	if errors.Is(err, ErrNoDomain) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Free()
	if active, err := d.IsActive(); err == nil && !active {
		return nil
	}
	if err := d.Destroy(); err != nil && !isNoDomain(err) {
		var lerr libvirt.Error
		if errors.As(err, &lerr) && lerr.Code == libvirt.ERR_OPERATION_INVALID {
			return nil // already shut off
		}
		return fmt.Errorf("destroy domain %s: %w", name, err)
	}
	return nil
}

func (l *Libvirt) Exists(ctx context.Context, name string) (bool, error) {
	d, err := l.lookup(name)
	if errors.Is(err, ErrNoDomain) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	d.Free()
	return true, nil
}

func (l *Libvirt) SnapshotDiskOnly(ctx context.Context, domain, snapXML string) error {
	d, err := l.lookup(domain)
	if err != nil {
		return err
	}
	defer d.Free()
	flags := libvirt.DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | libvirt.DOMAIN_SNAPSHOT_CREATE_ATOMIC |
		libvirt.DOMAIN_SNAPSHOT_CREATE_NO_METADATA
	s, err := d.CreateSnapshotXML(snapXML, flags)
	if err != nil {
		return fmt.Errorf("external disk-only snapshot of %s: %w", domain, err)
	}
	return s.Free()
}

// blockJobPoll is how often a block job's progress is looked at.
const blockJobPoll = 200 * time.Millisecond

func (l *Libvirt) BlockCommitActive(ctx context.Context, domain, disk string) error {
	d, err := l.lookup(domain)
	if err != nil {
		return err
	}
	defer d.Free()
	if err := d.BlockCommit(disk, "", "", 0, libvirt.DOMAIN_BLOCK_COMMIT_ACTIVE); err != nil {
		return fmt.Errorf("blockcommit %s %s: %w", domain, disk, err)
	}
	return finishCommit(ctx, d, domain, disk)
}

func (l *Libvirt) FinishBlockCommit(ctx context.Context, domain, disk string) error {
	d, err := l.lookup(domain)
	if err != nil {
		return err
	}
	defer d.Free()
	return finishCommit(ctx, d, domain, disk)
}

// blockJobTypes maps libvirt's job types to BlockJob.Type.
var blockJobTypes = map[libvirt.DomainBlockJobType]string{
	libvirt.DOMAIN_BLOCK_JOB_TYPE_PULL:          JobPull,
	libvirt.DOMAIN_BLOCK_JOB_TYPE_COPY:          JobCopy,
	libvirt.DOMAIN_BLOCK_JOB_TYPE_COMMIT:        JobCommit,
	libvirt.DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT: JobActiveCommit,
	libvirt.DOMAIN_BLOCK_JOB_TYPE_BACKUP:        JobBackup,
}

func (l *Libvirt) BlockJob(ctx context.Context, domain, disk string) (BlockJob, error) {
	d, err := l.lookup(domain)
	if err != nil {
		return BlockJob{}, err
	}
	defer d.Free()
	info, err := d.GetBlockJobInfo(disk, 0)
	if err != nil {
		return BlockJob{}, fmt.Errorf("block job of %s %s: %w", domain, disk, err)
	}
	if info.Type == libvirt.DOMAIN_BLOCK_JOB_TYPE_UNKNOWN {
		return BlockJob{}, nil
	}
	t, ok := blockJobTypes[info.Type]
	if !ok {
		t = fmt.Sprintf("type %d", info.Type)
	}
	return BlockJob{Type: t, Cur: info.Cur, End: info.End}, nil
}

// finishCommit waits for the active commit on disk to be ready, pivots and
// waits for the job to end.
func finishCommit(ctx context.Context, d *libvirt.Domain, domain, disk string) error {
	// An active commit never ends by itself: it reaches the "ready" state
	// (cur == end) and keeps mirroring until we pivot.
	for {
		info, err := d.GetBlockJobInfo(disk, 0)
		if err != nil {
			return fmt.Errorf("blockcommit %s %s: job info: %w", domain, disk, err)
		}
		if info.Type == 0 {
			return fmt.Errorf("blockcommit %s %s: job vanished before it was ready", domain, disk)
		}
		if info.End > 0 && info.Cur == info.End {
			break
		}
		select {
		case <-ctx.Done():
			// Leave the job running and the domain on its overlay: the
			// ledger entry makes a later cleanup take the job over.
			// Aborting it would throw away what it has copied.
			return fmt.Errorf("blockcommit %s %s: %w", domain, disk, ctx.Err())
		case <-time.After(blockJobPoll):
		}
	}
	// cur == end can show before QEMU declares the job ready; the pivot is
	// then refused with "not ready for pivot yet" (seen with 3 disks under
	// TCG): retry for a while.
	for tries := 0; ; tries++ {
		err := d.BlockJobAbort(disk, libvirt.DOMAIN_BLOCK_JOB_ABORT_PIVOT)
		if err == nil {
			break
		}
		var lerr libvirt.Error
		if !errors.As(err, &lerr) || lerr.Code != libvirt.ERR_BLOCK_COPY_ACTIVE || tries >= 150 || ctx.Err() != nil {
			return fmt.Errorf("blockcommit %s %s: pivot: %w", domain, disk, err)
		}
		time.Sleep(blockJobPoll)
	}
	// The pivot completes asynchronously; wait for the job to disappear.
	for i := 0; i < 300; i++ {
		info, err := d.GetBlockJobInfo(disk, 0)
		if err != nil || info.Type == 0 {
			return nil
		}
		time.Sleep(blockJobPoll)
	}
	return fmt.Errorf("blockcommit %s %s: pivot did not finish within a minute", domain, disk)
}

func (l *Libvirt) DomainState(ctx context.Context, name string) (DomainState, error) {
	d, err := l.lookup(name)
	if err != nil {
		return "", err
	}
	defer d.Free()
	state, reason, err := d.GetState()
	if err != nil {
		return "", fmt.Errorf("state of domain %s: %w", name, err)
	}
	switch state {
	case libvirt.DOMAIN_RUNNING, libvirt.DOMAIN_BLOCKED, libvirt.DOMAIN_SHUTDOWN:
		return StateRunning, nil
	case libvirt.DOMAIN_PAUSED:
		if libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_USER {
			return StateSuspended, nil
		}
		return StatePaused, nil
	case libvirt.DOMAIN_PMSUSPENDED:
		return StatePaused, nil
	default:
		return StateOff, nil
	}
}

// ListDomains returns the names of all domains, defined or running.
func (l *Libvirt) ListDomains(ctx context.Context) ([]string, error) {
	doms, err := l.conn.ListAllDomains(0)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	names := make([]string, 0, len(doms))
	for _, d := range doms {
		n, err := d.GetName()
		d.Free()
		if err != nil {
			return nil, fmt.Errorf("list domains: %w", err)
		}
		names = append(names, n)
	}
	return names, nil
}

func (l *Libvirt) Suspend(ctx context.Context, name string) error {
	d, err := l.lookup(name)
	if err != nil {
		return err
	}
	defer d.Free()
	if err := d.Suspend(); err != nil {
		return fmt.Errorf("suspend domain %s: %w", name, err)
	}
	return nil
}

func (l *Libvirt) Resume(ctx context.Context, name string) error {
	d, err := l.lookup(name)
	if err != nil {
		return err
	}
	defer d.Free()
	if err := d.Resume(); err != nil {
		return fmt.Errorf("resume domain %s: %w", name, err)
	}
	return nil
}

func (l *Libvirt) Shutdown(ctx context.Context, name string) error {
	d, err := l.lookup(name)
	if err != nil {
		return err
	}
	defer d.Free()
	if err := d.ShutdownFlags(libvirt.DOMAIN_SHUTDOWN_DEFAULT); err != nil {
		return fmt.Errorf("shut down domain %s: %w", name, err)
	}
	return nil
}

func (l *Libvirt) Start(ctx context.Context, name string) error {
	d, err := l.lookup(name)
	if err != nil {
		return err
	}
	defer d.Free()
	if err := d.Create(); err != nil {
		return fmt.Errorf("start domain %s: %w", name, err)
	}
	return nil
}
