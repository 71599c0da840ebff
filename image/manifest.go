package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/snapshot-backup/snapshot-backup/internal/fsutil"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
	"github.com/snapshot-backup/snapshot-backup/rootfs"
)

// FormatVersion changes whenever the image is laid out differently (disk
// layout, initramfs contents, module list format), so that every existing
// build is redone.
const FormatVersion = 1

// Files in the output directory.
const (
	ImageFile     = "appliance.img" // GPT disk: p1 ESP (FAT32), p2 squashfs root
	KernelFile    = "vmlinuz"       // for libvirt direct kernel boot
	InitramfsFile = "initramfs.img" // for libvirt direct kernel boot
	ManifestFile  = "manifest.json"
)

// Inputs decide whether a build in the output directory is current.
type Inputs struct {
	FormatVersion    int    `json:"format_version"`
	KernelSHA256     string `json:"kernel_sha256"`
	SupervisorSHA256 string `json:"supervisor_sha256"`
	// ModulesSHA256 covers the wanted module list and the filtered
	// modules.dep, so editing Modules rebuilds.
	ModulesSHA256 string `json:"modules_sha256"`
	RootfsKey     string `json:"rootfs_key"`
}

// Hash is one string naming all inputs.
func (in Inputs) Hash() string {
	b, _ := json.Marshal(in)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// FileInfo describes one output (or input) file.
type FileInfo struct {
	Name   string `json:"name"` // file name in the output directory, or the source path for inputs
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest is manifest.json: what was built from what.
type Manifest struct {
	FormatVersion int `json:"format_version"`
	// JobFormat is the job format (job.Version) the supervisor in the
	// image speaks, read from its job.FormatMark: hostctl boots only an
	// image that speaks its own (CheckJobFormat). Images built before it
	// was recorded have none, and speak format 1.
	JobFormat    int     `json:"job_format"`
	Built        string  `json:"built"` // RFC 3339, UTC
	BuildSeconds float64 `json:"build_seconds"`
	InputHash    string  `json:"input_hash"`
	Inputs       Inputs  `json:"inputs"`

	KernelVersion string   `json:"kernel_version"`
	Kernel        FileInfo `json:"kernel"`
	Initramfs     FileInfo `json:"initramfs"`
	Image         FileInfo `json:"image"`
	Rootfs        FileInfo `json:"rootfs"`     // the squashfs in partition 2
	Supervisor    FileInfo `json:"supervisor"` // Name is the source path
	KernelSource  string   `json:"kernel_source"`
	Layout        Layout   `json:"layout"`

	// Modules in load order (etc/sb-modules); ModulesBuiltin are wanted
	// names the kernel has built in.
	Modules []string `json:"modules"`
	// ModulesOnDemand are in the initramfs for the supervisor to load at
	// a filesystem's first mount (OnDemand and what they need).
	ModulesOnDemand []string `json:"modules_on_demand,omitempty"`
	ModulesBuiltin  []string `json:"modules_builtin"`

	RootfsInfo rootfs.Result     `json:"rootfs_info"` // key, suite, mirrors, package versions
	Tools      map[string]string `json:"tools"`

	// CacheHit is set by Build when nothing had to be built.
	CacheHit bool `json:"-"`
	// RootfsCacheHit is set by Build when the squashfs came from the cache.
	RootfsCacheHit bool `json:"-"`
}

// ReadManifest reads dir/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return &m, nil
}

// intact reports whether the outputs m describes are in dir with their
// recorded sizes. Sizes, not hashes: the check must take seconds, and a
// rename-based writer never leaves a same-size half file.
func (m *Manifest) intact(dir string) bool {
	for _, f := range []FileInfo{m.Image, m.Kernel, m.Initramfs} {
		st, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil || !st.Mode().IsRegular() || st.Size() != f.Size || f.Size == 0 {
			return false
		}
	}
	return true
}

// hashFile returns size and hex sha256 of the file at path.
func hashFile(path string) (FileInfo, error) {
	sum, n, err := fsutil.SHA256File(path)
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Name: filepath.Base(path), Size: n, SHA256: sum}, nil
}

// CheckJobFormat refuses the image in dir unless its manifest says that
// its supervisor speaks the job format this program writes: an older
// supervisor would refuse the job only after the boot, or misread it.
func CheckJobFormat(dir string) error {
	m, err := ReadManifest(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("appliance image %s has no %s: run `hostctl build-image`", dir, ManifestFile)
	}
	if err != nil {
		return fmt.Errorf("appliance image %s: %w: run `hostctl build-image`", dir, err)
	}
	v := m.JobFormat
	if v == 0 {
		v = 1 // built before the manifest recorded it: its supervisor spoke format 1
	}
	if v != job.Version {
		return fmt.Errorf("appliance image %s speaks job format %d, this hostctl writes %d: run `hostctl build-image`", dir, v, job.Version)
	}
	return nil
}

// supervisorJobFormat reads the job format a supervisor binary speaks.
func supervisorJobFormat(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("supervisor: %w", err)
	}
	v, err := job.ReadFormatMark(data)
	if err != nil {
		return 0, fmt.Errorf("supervisor %s: %w: it speaks no job format this hostctl knows; build it from the same tree (CGO_ENABLED=0 go build ./supervisor)", path, err)
	}
	if v != job.Version {
		return 0, fmt.Errorf("supervisor %s speaks job format %d, this hostctl writes %d: build both from the same tree", path, v, job.Version)
	}
	return v, nil
}
