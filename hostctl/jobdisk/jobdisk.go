// Package jobdisk makes and reads the small FAT32 disk that carries one job
// to the appliance (job.toml and this client's secrets) and brings its
// result and log back. FAT32 because both go-diskfs (host side, no mounts
// on the host) and the appliance kernel (vfat) read and write it.
package jobdisk

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// Size of a job disk: large enough for a chatty backend log; the file is
// sparse. go-diskfs 1.9.4 writes an invalid FAT32 at some sizes (64 MiB among
// them: more clusters than FAT entries); 48 MiB passes fsck.vfat, which the
// tests check.
const Size = 48 << 20

// Label is the FAT volume label.
const Label = "SBJOB"

// Create writes a new job disk at p with j as job.toml and secrets (file
// name → content; names must start with job.SecretPrefix). An existing file at p is an error: a job disk is
// never reused.
func Create(p string, j *job.Job, secrets map[string][]byte) error {
	data, err := j.Marshal()
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); err == nil {
		return fmt.Errorf("create job disk %s: already exists", p)
	}
	d, err := diskfs.Create(p, Size, diskfs.SectorSizeDefault)
	if err != nil {
		return fmt.Errorf("create job disk %s: %w", p, err)
	}
	defer d.Close()
	if err := os.Chmod(p, 0o600); err != nil {
		return fmt.Errorf("create job disk %s: %w", p, err)
	}
	fsys, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeFat32, VolumeLabel: Label})
	if err != nil {
		return fmt.Errorf("create job disk %s: FAT32: %w", p, err)
	}
	if err := writeFile(fsys, "/"+job.FileJob, data); err != nil {
		return fmt.Errorf("job disk %s: %w", p, err)
	}
	names := make([]string, 0, len(secrets))
	for n := range secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasPrefix(n, job.SecretPrefix) || strings.Contains(n, "/") {
			return fmt.Errorf("job disk %s: secret file name %q must be %s… without a slash", p, n, job.SecretPrefix)
		}
		if err := writeFile(fsys, "/"+n, secrets[n]); err != nil {
			return fmt.Errorf("job disk %s: %w", p, err)
		}
	}
	return nil
}

func writeFile(fsys filesystem.FileSystem, name string, data []byte) error {
	f, err := fsys.OpenFile(name, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

// Contents is what the appliance left on a job disk.
type Contents struct {
	Result []byte // result.jsonl, nil when absent
	Log    []byte // job.log, nil when absent
}

// Read reads the result and log back from the job disk at p.
func Read(p string) (*Contents, error) {
	d, err := diskfs.Open(p, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("open job disk %s: %w", p, err)
	}
	defer d.Close()
	fsys, err := d.GetFilesystem(0)
	if err != nil {
		return nil, fmt.Errorf("job disk %s: read FAT32: %w", p, err)
	}
	var c Contents
	if c.Result, err = readFile(fsys, "/"+job.FileResult); err != nil {
		return nil, fmt.Errorf("job disk %s: %w", p, err)
	}
	if c.Log, err = readFile(fsys, "/"+job.FileLog); err != nil {
		return nil, fmt.Errorf("job disk %s: %w", p, err)
	}
	return &c, nil
}

// readFile returns nil, nil for a missing file: an appliance that died early
// writes nothing, and that is reported from the missing done record.
// go-diskfs does not wrap fs.ErrNotExist, so existence is looked up first.
func readFile(fsys filesystem.FileSystem, name string) ([]byte, error) {
	entries, err := fsys.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("list root directory: %w", err)
	}
	found := false
	for _, e := range entries {
		found = found || strings.EqualFold(e.Name(), strings.TrimPrefix(name, "/"))
	}
	if !found {
		return nil, nil
	}
	f, err := fsys.OpenFile(name, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	// One Read of exactly the file's size: go-diskfs 1.9.4 returns bytes
	// past the end of the file when a Read starts inside a cluster, so the
	// small reads of io.ReadAll would bring back NULs after the data.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("size of %s: %w", name, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	data := make([]byte, size)
	_, err = io.ReadFull(f, data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}
