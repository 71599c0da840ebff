// Package jobdisk makes and reads the small FAT32 disk that carries one job
// to the appliance (job.toml and this client's secrets) and brings its
// result and log back. FAT32 because both go-diskfs (host side, no mounts
// on the host) and the appliance kernel (vfat) read and write it.
package jobdisk

import (
	"fmt"
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
