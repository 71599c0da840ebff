// Package run is the job flow of the appliance's PID 1: boot (mounts,
// modules, disks, the userland overlay), read the job, mount the client's
// filesystem, the cache and the target, run the backend under a watchdog,
// record the result and power off. It never returns.
package run
