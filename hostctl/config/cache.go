package config

import (
	"path"
	"path/filepath"
	"regexp"
)

// CacheLVPrefix starts the name of a client's cache LV (type "lvm"):
// <vg>/hostctl-cache-<client>.
const CacheLVPrefix = "hostctl-cache-"

// ClientCache is one client's cache volume.
type ClientCache struct {
	Client string
	Type   string // "file" or "lvm"
	// Path is the image (type "file") or the LV's device, /dev/VG/LV.
	Path   string
	VG, LV string // type "lvm"
	Size   int64
}

// String names the volume for messages: the image, or vg/lv.
func (cc ClientCache) String() string {
	if cc.Type == "lvm" {
		return cc.VG + "/" + cc.LV
	}
	return cc.Path
}

// CacheFor is client's own cache volume. Client names are file names
// ([A-Za-z0-9._-], not starting with "." or "-"), so neither the image
// nor the LV name can reach outside cache.dir or clash with another
// client's.
func (c *Config) CacheFor(client string) ClientCache {
	h := c.Host.Cache
	cc := ClientCache{Client: client, Type: h.Type, Size: int64(h.Size)}
	if h.Type == "lvm" {
		cc.VG, cc.LV = h.VG, CacheLVPrefix+client
		cc.Path = "/dev/" + cc.VG + "/" + cc.LV
		return cc
	}
	cc.Path = filepath.Join(h.Dir, client+".qcow2")
	return cc
}

var vgName = regexp.MustCompile(`^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$`)

func (v *validator) cache() {
	h, f := &v.c.Host.Cache, v.c.Path
	if h.Path != "" {
		v.at(f, "cache.path", "%q: one cache volume for all clients is no longer used: every client has its own, %s; remove this key. The old volume can be deleted (its caches are rebuilt by each client's next backup)",
			h.Path, map[bool]string{true: `<cache.vg>/hostctl-cache-<client> (type "lvm": set cache.vg)`, false: "<cache.dir>/<client>.qcow2 (default <state_dir>/caches)"}[h.Type == "lvm"])
	}
	switch h.Type {
	case "file":
		if !path.IsAbs(h.Dir) {
			v.at(f, "cache.dir", "%q is not an absolute path", h.Dir)
		}
		if h.VG != "" {
			v.at(f, "cache.vg", `set, but cache.type is "file": the caches are images in cache.dir; remove one of them`)
		}
	case "lvm":
		switch {
		case h.VG == "":
			v.atOr(f, "cache.vg", "cache.type", `missing: type "lvm" needs the volume group of the cache LVs (%s<client>)`, CacheLVPrefix)
		case !vgName.MatchString(h.VG):
			v.at(f, "cache.vg", "%q is not a volume group name", h.VG)
		}
		if v.c.lines[f].has("cache.dir") {
			v.at(f, "cache.dir", `set, but cache.type is "lvm": the caches are LVs in cache.vg; remove one of them`)
		}
	default:
		v.at(f, "cache.type", "unknown cache type %q: want one of %s", h.Type, quoted(cacheTypes))
	}
}
