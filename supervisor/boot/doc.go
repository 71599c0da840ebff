// Package boot holds the PID-1 primitives of the backup appliance: the
// declarative mount table and the stack that unmounts it in reverse, kernel
// module loading, finding virtio disks by serial, orphan reaping, the kernel
// command line and log, and powering off. It knows nothing about jobs.
package boot
