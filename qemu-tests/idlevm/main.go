// Command idlevm is the init of the demo and test client VMs: a small idle
// guest whose disks hostctl backs up while it runs. It announces itself on
// the console, then writes a heartbeat line every few seconds, so a test can
// see the guest is alive while its disk is being snapshotted.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	fmt.Println("idlevm: up")
	for i := 0; ; i++ {
		time.Sleep(5 * time.Second)
		fmt.Fprintf(os.Stdout, "idlevm: heartbeat %d\n", i)
	}
}
