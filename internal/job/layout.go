package job

// MountFstab as Backup.Mount assembles the client's tree from the fstab
// of its root filesystem (the one filesystem that holds /etc/fstab).
const MountFstab = "fstab"

// MountPoint is one filesystem of a client's tree: What (selected like
// Backup.Mount) at Where (an absolute path inside the client).
type MountPoint struct {
	Where string `toml:"where"`
	What  string `toml:"what"`
}

// ModeExec runs one program from the job disk as root in the appliance's
// userland, with the job's disks attached, and reports its exit status as
// the job's: the harness by which the tests run Go test binaries against
// real LVM and real guest layouts inside the appliance (the hosts that run
// the tests have no device-mapper).
const ModeExec = "exec"

// Exec is mode exec's program. Its output goes to FileLog; the done
// record's status is ok only when it exits 0.
type Exec struct {
	// File is the program's name on the job disk; it must start with
	// SecretPrefix, the only top-level names the job disk carries besides
	// the job itself.
	File string   `toml:"file"`
	Args []string `toml:"args"`
	Env  []string `toml:"env"`
}
