package config

import (
	"slices"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// Hook transports.
const (
	TransportAgent = "agent" // QEMU guest agent guest-exec (default for lvm_libvirt)
	TransportSSH   = "ssh"   // ssh into the guest (guests without an agent)
	TransportLocal = "local" // on this host (lvm_host, self, plain)
)

// Defaults of [hooks].
const (
	DefaultHookTimeLimit = 5 * time.Minute
	PreFailureFail       = "fail"
	PreFailureContinue   = "continue"
)

var (
	transports  = []string{TransportAgent, TransportSSH, TransportLocal}
	preFailures = []string{PreFailureFail, PreFailureContinue}
)

// Hooks are a client's snapshot hooks: shell commands run with /bin/sh -c
// in the guest (or on the host for lvm_host clients).
type Hooks struct {
	PreSnapshot  string `toml:"pre_snapshot"`  // before the snapshot (flush, lock tables)
	OnSnapshot   string `toml:"on_snapshot"`   // right after it; always runs once pre_snapshot ran
	PostSnapshot string `toml:"post_snapshot"` // after the backup; SB_OUTCOME=ok|warning|failed
	// PreRecovery runs in the blank VM before an in-place recovery
	// (hostctl recover CLIENT) shuts it down; if it fails, nothing changes.
	PreRecovery string `toml:"pre_recovery"`
	// EndRecovery runs in the appliance, chrooted into the restored tree
	// with /dev, /proc and /sys bound, before it is unmounted (e.g. to
	// reinstall a boot loader).
	EndRecovery string `toml:"end_recovery"`
	// PostRecovery runs in the restored VM once its guest agent answers;
	// SB_ARCHIVE names the archive restored.
	PostRecovery string `toml:"post_recovery"`
	// Transport: "agent" (default; "local" for client types without a
	// guest), "ssh" or "local".
	Transport string       `toml:"transport"`
	TimeLimit job.Duration `toml:"time_limit"` // per hook, default 5m, at most 30 days
	// Freeze freezes the guest's filesystems (guest agent fsfreeze) just
	// around the snapshot, after pre_snapshot; they are always thawed.
	Freeze bool `toml:"freeze"`
	// OnPreFailure: "fail" (default) skips the snapshot and fails the job
	// when pre_snapshot fails; "continue" takes it anyway.
	OnPreFailure string   `toml:"on_pre_failure"`
	SSH          HooksSSH `toml:"ssh"`
}

// HooksSSH says how to reach the guest for transport = "ssh".
type HooksSSH struct {
	Host         string `toml:"host"`          // required for ssh
	User         string `toml:"user"`          // default root
	Port         int    `toml:"port"`          // default 22
	IdentityFile string `toml:"identity_file"` // required for ssh: the private key for the guest (mode 0600)
	KnownHosts   string `toml:"known_hosts"`   // required for ssh: the guest's pinned host key (nothing else is trusted)
}

// Any says whether any hook is configured.
func (h *Hooks) Any() bool { return h.PreSnapshot != "" || h.OnSnapshot != "" || h.PostSnapshot != "" }

func (c *Config) hooksDefaults(cl *Client) {
	h := &cl.Hooks
	if h.Transport == "" {
		h.Transport = TransportAgent
		if cl.Type != TypeLVMLibvirt {
			h.Transport = TransportLocal
		}
	}
	if h.TimeLimit.Duration == 0 {
		h.TimeLimit.Duration = DefaultHookTimeLimit
	}
	h.OnPreFailure = or(h.OnPreFailure, PreFailureFail)
	if h.SSH.User == "" {
		h.SSH.User = "root"
	}
	if h.SSH.IdentityFile != "" {
		h.SSH.IdentityFile = c.resolve(h.SSH.IdentityFile)
	}
	if h.SSH.KnownHosts != "" {
		h.SSH.KnownHosts = c.resolve(h.SSH.KnownHosts)
	}
}

func (v *validator) hooks(cl *Client) {
	h, f := &cl.Hooks, cl.File
	if h.Transport != "" && !slices.Contains(transports, h.Transport) {
		v.at(f, "hooks.transport", "unknown transport %q: want one of %s", h.Transport, quoted(transports))
	}
	if h.TimeLimit.Duration < 0 {
		v.at(f, "hooks.time_limit", "%s: want a duration > 0", h.TimeLimit.Duration)
	}
	if h.OnPreFailure != "" && !slices.Contains(preFailures, h.OnPreFailure) {
		v.at(f, "hooks.on_pre_failure", "unknown value %q: want one of %s", h.OnPreFailure, quoted(preFailures))
	}
	if h.Transport == TransportSSH {
		v.hooksSSH(f, &h.SSH)
	}
	if h.Transport != "" && h.Transport != TransportLocal && cl.Type != TypeLVMLibvirt && cl.Type != "" {
		v.at(f, "hooks.transport", "%q: a %s client has no guest; its hooks run on this host (\"local\")", h.Transport, cl.Type)
	}
	if h.Freeze && h.Transport != "" && h.Transport != TransportAgent {
		v.at(f, "hooks.freeze", "needs the guest agent (transport = \"agent\")")
	}
	if cl.Type != TypeLVMLibvirt && cl.Type != "" {
		for _, k := range []struct{ key, cmd string }{{"pre_recovery", h.PreRecovery}, {"end_recovery", h.EndRecovery}, {"post_recovery", h.PostRecovery}} {
			if k.cmd != "" {
				v.at(f, "hooks."+k.key, "a %s client is not recovered in place (only lvm_libvirt VMs are): its recovery hooks would never run", cl.Type)
			}
		}
	}
	if h.SSH.Port < 0 || h.SSH.Port > 65535 {
		v.at(f, "hooks.ssh.port", "%d is not a port", h.SSH.Port)
	}
}

// hooksSSH checks how hooks reach a guest over ssh. Without known_hosts ssh
// would trust ~/.ssh/known_hosts, without identity_file any key of root's
// agent or ~/.ssh; a host or user starting with "-" is an ssh option.
func (v *validator) hooksSSH(f string, s *HooksSSH) {
	if s.Host == "" {
		v.at(f, "hooks.ssh.host", "missing: transport = \"ssh\" needs the guest's address")
	} else if err := checkSSHWord("host", s.Host); err != nil {
		v.at(f, "hooks.ssh.host", "%v", err)
	}
	if err := checkSSHWord("user", s.User); err != nil {
		v.at(f, "hooks.ssh.user", "%v", err)
	}
	if s.IdentityFile == "" {
		v.atOr(f, "hooks.ssh.identity_file", "hooks.transport", `missing: transport = "ssh" needs the private key hostctl logs in to the guest with (mode 0600)`)
	} else if err := checkSecretFile(s.IdentityFile); err != nil {
		v.at(f, "hooks.ssh.identity_file", "%v", err)
	}
	if s.KnownHosts == "" {
		v.atOr(f, "hooks.ssh.known_hosts", "hooks.transport", `missing: transport = "ssh" needs the guest's pinned host key (a known_hosts file): nothing else is trusted`)
	} else if err := checkPinnedKeys(s.KnownHosts); err != nil {
		v.at(f, "hooks.ssh.known_hosts", "%v", err)
	}
}
