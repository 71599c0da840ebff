package config

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
)

// Settings of the client types other than lvm_libvirt, kept in Client:
//
//	self      paths = ["/etc", "/srv/www"]: host directories given read-only
//	          to the appliance (virtio-9p), backed up as if they were the
//	          client's filesystem, with their paths; no snapshot.
//	plain     plain_dir = "NAME": a directory on the client's own cache
//	          volume (default: the client name); no libvirt, no LVM.
//	lvm_host  host_device = "vg/lv": an LV of this host, snapshotted and
//	          attached as target_device (default "vda"); hooks run here.

// DefaultTargetDevice is where an lvm_host client's LV appears in the appliance.
const DefaultTargetDevice = "vda"

// typeKeys are the keys that belong to one client type only.
var typeKeys = map[string]string{
	"paths": TypeSelf, "plain_dir": TypePlain, "host_device": TypeLVMHost, "target_device": TypeLVMHost,
}

func (c *Config) clientTypeDefaults(cl *Client) {
	switch cl.Type {
	case TypePlain:
		cl.PlainDir = or(cl.PlainDir, cl.Name)
	case TypeLVMHost:
		cl.TargetDevice = or(cl.TargetDevice, DefaultTargetDevice)
	}
}

// clientType checks the settings of a client's type.
func (v *validator) clientType(cl *Client) {
	f := cl.File
	for _, key := range sortedKeys(typeKeys) {
		if t := typeKeys[key]; t != cl.Type && v.c.lines[f].has(key) {
			v.at(f, key, "only for clients of type %q (this one is %q)", t, cl.Type)
		}
	}
	switch cl.Type {
	case TypeSelf:
		if len(cl.Paths) == 0 {
			v.atOr(f, "paths", "type", "missing (required for type \"self\"): the host directories to back up, e.g. [\"/etc\"]")
		}
		for i, p := range cl.Paths {
			switch {
			case !path.IsAbs(p) || path.Clean(p) != p || p == "/":
				v.at(f, "paths", "%q: want a clean absolute path of a directory other than \"/\"", p)
			case slices.Contains(cl.Paths[:i], p):
				v.at(f, "paths", "%q is listed twice", p)
			default:
				if fi, err := os.Stat(p); err != nil {
					v.at(f, "paths", "%v", err)
				} else if !fi.IsDir() {
					v.at(f, "paths", "%s is not a directory", p)
				}
			}
		}
	case TypePlain:
		if d := cl.PlainDir; path.IsAbs(d) || slices.Contains(strings.Split(d, "/"), "..") || path.Clean(d) != d {
			v.at(f, "plain_dir", "%q: want a clean path relative to the cache volume, without \"..\"", d)
		}
	case TypeLVMHost:
		if cl.HostDevice == "" {
			v.atOr(f, "host_device", "type", "missing (required for type \"lvm_host\"): the logical volume of this host, \"vg/lv\"")
		} else if !lvName.MatchString(cl.HostDevice) {
			v.at(f, "host_device", "%q: want a logical volume of this host as \"vg/lv\"", cl.HostDevice)
		}
		if !wholeDisk.MatchString(cl.TargetDevice) {
			v.at(f, "target_device", "%q: want a disk name like \"vda\" or \"sdb\" (no partition)", cl.TargetDevice)
		}
		// hooks.transport: checked with the hooks (only "local").
	}
	if cl.Type != TypeLVMLibvirt && cl.Type != TypeLVMHost && v.c.lines[f].has("snapshot_size") {
		v.at(f, "snapshot_size", "type %q takes no snapshot", cl.Type)
	}
}

// Describe says in a few words what a client of a type other than
// lvm_libvirt backs up (for hostctl check).
func (cl *Client) Describe() string {
	switch cl.Type {
	case TypeSelf:
		return fmt.Sprintf("host directories %s, read-only over virtio-9p, no snapshot", strings.Join(cl.Paths, ", "))
	case TypePlain:
		return fmt.Sprintf("directory %s on its cache volume", cl.PlainDir)
	case TypeLVMHost:
		return fmt.Sprintf("LV %s of this host, snapshotted, attached as %s", cl.HostDevice, cl.TargetDevice)
	}
	return ""
}
