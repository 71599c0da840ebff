package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/ledger"
	"github.com/snapshot-backup/snapshot-backup/hostctl/virt"
)

// fakeHV is a Hypervisor with domains as XML strings.
type fakeHV struct {
	live     map[string]string // running domains' live XML
	inactive map[string]string // persistent definitions
	base     string            // what a block commit pivots the live disk back to
	commits  []string
	calls    []string
	// onStart, when set, is called with a transient domain's XML; the
	// domain then runs (is listed) until destroyed.
	onStart func(xml string) error
	// ignoreShutdown: a graceful shutdown request is ignored (a guest
	// without ACPI handling or agent).
	ignoreShutdown bool
	// offBeforeShutdown: the domain goes off by itself just before the
	// shutdown request, which libvirt then refuses.
	offBeforeShutdown bool
	// jobs are the block jobs running, by "domain disk": their type.
	jobs map[string]string
	// paused holds the domains that do not simply run: suspended or
	// paused by the hypervisor.
	paused map[string]virt.DomainState
	// agent: the domains have a guest agent that freezes (frozen says which are).
	agent  bool
	frozen map[string]bool
	// onSnapshot, when set, runs inside SnapshotDiskOnly (while the domain
	// is suspended or frozen): where a test simulates hostctl being killed.
	onSnapshot func()
}

var _ virt.Hypervisor = (*fakeHV)(nil)

func newFakeHV() *fakeHV {
	return &fakeHV{live: map[string]string{}, inactive: map[string]string{},
		jobs: map[string]string{}, paused: map[string]virt.DomainState{}, frozen: map[string]bool{}}
}

func (f *fakeHV) DomainXML(_ context.Context, name string) (string, bool, error) {
	if x, ok := f.live[name]; ok {
		return x, true, nil
	}
	if x, ok := f.inactive[name]; ok {
		return x, false, nil
	}
	return "", false, fmt.Errorf("domain %s: %w", name, virt.ErrNoDomain)
}

func (f *fakeHV) InactiveXML(_ context.Context, name string) (string, error) {
	if x, ok := f.inactive[name]; ok {
		return x, nil
	}
	return "", virt.ErrNoDomain
}

func (f *fakeHV) Define(_ context.Context, x string) error {
	name := x[strings.Index(x, "<name>")+6 : strings.Index(x, "</name>")]
	f.inactive[name] = x
	f.calls = append(f.calls, "define "+name)
	return nil
}

func (f *fakeHV) Undefine(_ context.Context, name string) error {
	delete(f.inactive, name)
	f.calls = append(f.calls, "undefine "+name)
	return nil
}

func (f *fakeHV) StartTransient(_ context.Context, x string) error {
	if f.onStart == nil {
		return nil // powers off at once
	}
	name := x[strings.Index(x, "<name>")+6 : strings.Index(x, "</name>")]
	f.live[name] = x
	f.calls = append(f.calls, "start "+name)
	return f.onStart(x)
}

func (f *fakeHV) Destroy(_ context.Context, name string) error {
	f.calls = append(f.calls, "destroy "+name)
	delete(f.live, name)
	return nil
}

func (f *fakeHV) Exists(_ context.Context, name string) (bool, error) {
	_, a := f.live[name]
	_, b := f.inactive[name]
	return a || b, nil
}

func (f *fakeHV) QemuAgentCommand(context.Context, string, string) (string, error) {
	return "", errors.New("no agent")
}
func (f *fakeHV) FSFreeze(_ context.Context, domain string) error {
	if !f.agent {
		return errors.New("no agent")
	}
	f.calls = append(f.calls, "freeze "+domain)
	f.frozen[domain] = true
	return nil
}

func (f *fakeHV) FSThaw(_ context.Context, domain string) error {
	if !f.agent {
		return errors.New("no agent")
	}
	f.calls = append(f.calls, "thaw "+domain)
	delete(f.frozen, domain)
	return nil
}

func (f *fakeHV) SnapshotDiskOnly(_ context.Context, domain, _ string) error {
	f.calls = append(f.calls, "snapshot "+domain)
	if f.onSnapshot != nil {
		f.onSnapshot()
	}
	return nil
}

// Suspend and Resume behave like libvirt's: suspending a paused domain
// succeeds and changes nothing; resuming one that is not paused fails.
func (f *fakeHV) Suspend(_ context.Context, domain string) error {
	f.calls = append(f.calls, "suspend "+domain)
	if f.paused[domain] == "" {
		f.paused[domain] = virt.StateSuspended
	}
	return nil
}

func (f *fakeHV) Resume(_ context.Context, domain string) error {
	f.calls = append(f.calls, "resume "+domain)
	if f.paused[domain] == "" {
		return fmt.Errorf("resume domain %s: Requested operation is not valid: domain is not paused", domain)
	}
	delete(f.paused, domain)
	return nil
}

func (f *fakeHV) DomainState(_ context.Context, name string) (virt.DomainState, error) {
	if _, ok := f.live[name]; ok {
		if s := f.paused[name]; s != "" {
			return s, nil
		}
		return virt.StateRunning, nil
	}
	if _, ok := f.inactive[name]; ok {
		return virt.StateOff, nil
	}
	return "", fmt.Errorf("domain %s: %w", name, virt.ErrNoDomain)
}

func (f *fakeHV) Shutdown(_ context.Context, domain string) error {
	f.calls = append(f.calls, "shutdown "+domain)
	if f.offBeforeShutdown {
		delete(f.live, domain)
		return fmt.Errorf("shut down domain %s: Requested operation is not valid: domain is not running", domain)
	}
	if !f.ignoreShutdown {
		delete(f.live, domain)
	}
	return nil
}

func (f *fakeHV) Start(_ context.Context, domain string) error {
	x, ok := f.inactive[domain]
	if !ok {
		return virt.ErrNoDomain
	}
	f.calls = append(f.calls, "start-domain "+domain)
	f.live[domain] = x
	return nil
}

func (f *fakeHV) BlockCommitActive(_ context.Context, domain, disk string) error {
	if t := f.jobs[domain+" "+disk]; t != "" {
		// libvirt's answer while a job runs on the disk.
		return fmt.Errorf("blockcommit %s %s: block copy still active: disk '%s' already in active block job", domain, disk, disk)
	}
	f.commits = append(f.commits, domain+" "+disk)
	// Like libvirt: the live definition pivots back to the base.
	f.live[domain] = domXML(f.base)
	return nil
}

func (f *fakeHV) BlockJob(_ context.Context, domain, disk string) (virt.BlockJob, error) {
	if _, ok := f.live[domain]; !ok {
		return virt.BlockJob{}, fmt.Errorf("domain %s: %w", domain, virt.ErrNoDomain)
	}
	if t := f.jobs[domain+" "+disk]; t != "" {
		return virt.BlockJob{Type: t, Cur: 50, End: 100}, nil
	}
	return virt.BlockJob{}, nil
}

func (f *fakeHV) FinishBlockCommit(_ context.Context, domain, disk string) error {
	if f.jobs[domain+" "+disk] != virt.JobActiveCommit {
		return fmt.Errorf("blockcommit %s %s: job vanished before it was ready", domain, disk)
	}
	f.calls = append(f.calls, "finish-commit "+domain+" "+disk)
	delete(f.jobs, domain+" "+disk)
	f.live[domain] = domXML(f.base)
	return nil
}

func domXML(disk string) string {
	return `<domain type="qemu"><name>web</name><devices><disk type="file" device="disk">` +
		`<driver name="qemu" type="qcow2"/><source file="` + disk + `"/><target dev="vda" bus="virtio"/></disk></devices></domain>`
}

// webSnapshotLeftover is a ledger that records the snapshot of web's vda
// (its overlay a file holding data, over /vms/web.qcow2) and a fake
// hypervisor on which web runs on that overlay, its persistent definition
// too: what a job leaves to undo, or a killed hostctl to the next.
func webSnapshotLeftover(t *testing.T, data []byte) (*ledger.Ledger, *ledger.Entry, *fakeHV) {
	t.Helper()
	l, overlay := ledgerWithFile(t, "vda.snapshot.qcow2", data)
	hv := newFakeHV()
	hv.base = "/vms/web.qcow2"
	hv.live["web"], hv.inactive["web"] = domXML(overlay), domXML(overlay)
	e, err := l.Record(ledger.Entry{RunID: "r", Kind: ledger.KindSnapshot, Domain: "web", Disk: "vda",
		Path: overlay, Base: "/vms/web.qcow2", BaseFormat: "qcow2"})
	require.NoError(t, err)
	return l, e, hv
}

// ledgerWithFile opens a ledger in a new directory and writes the file
// name there (with data): the resource an entry of the test records.
func ledgerWithFile(t *testing.T, name string, data []byte) (*ledger.Ledger, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"))
	require.NoError(t, err)
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return l, p
}

func TestUndoLiveSnapshotCommitsAndRepointsPersistentConfig(t *testing.T) {
	// The persistent config may still name the overlay.
	l, e, hv := webSnapshotLeftover(t, nil)
	overlay := e.Path

	require.NoError(t, Undo(context.Background(), Deps{Virt: hv, Ledger: l}, e))
	require.Equal(t, []string{"web vda"}, hv.commits)
	require.Contains(t, hv.inactive["web"], "/vms/web.qcow2", "persistent config points at the base again")
	require.NoFileExists(t, overlay)
	left, err := l.List()
	require.NoError(t, err)
	require.Empty(t, left)
}

func TestUndoKeepsOverlayOfVanishedDomain(t *testing.T) {
	l, overlay := ledgerWithFile(t, "vda.snapshot.qcow2", []byte("guest writes"))
	e, err := l.Record(ledger.Entry{RunID: "r", Kind: ledger.KindSnapshot, Domain: "gone", Disk: "vda", Path: overlay, Base: "/b", BaseFormat: "raw"})
	require.NoError(t, err)
	err = Undo(context.Background(), Deps{Virt: newFakeHV(), Ledger: l}, e)
	require.ErrorContains(t, err, "merge it by hand")
	require.FileExists(t, overlay, "guest data is never deleted")
	left, _ := l.List()
	require.Len(t, left, 1, "the entry stays for the operator")
}

func TestReconcileNewestFirst(t *testing.T) {
	l, jobImg := ledgerWithFile(t, "job.img", nil)
	_, err := l.Record(ledger.Entry{RunID: "r", Kind: ledger.KindFile, Path: jobImg})
	require.NoError(t, err)
	_, err = l.Record(ledger.Entry{RunID: "r", Kind: ledger.KindDomain, Name: "hostctl-backup-web-r"})
	require.NoError(t, err)
	hv := newFakeHV()
	hv.live["hostctl-backup-web-r"] = "<domain/>"
	n, err := Reconcile(context.Background(), Deps{Virt: hv, Ledger: l}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []string{"destroy hostctl-backup-web-r"}, hv.calls)
	require.NoFileExists(t, jobImg)
}
