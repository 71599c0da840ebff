package backend

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/snapshot-backup/snapshot-backup/supervisor/chroot"
)

// ProxyArgv expands an ssh_config ProxyCommand (%h host, %p port, %% a
// percent sign) and runs it the way ssh does: through the shell, since it
// is the operator's command line.
func ProxyArgv(command, host string, port int) []string {
	r := strings.NewReplacer("%%", "%", "%h", host, "%p", strconv.Itoa(port))
	return []string{"/bin/sh", "-c", "exec " + r.Replace(command)}
}

// startRelay listens on 127.0.0.1 (inside the appliance) and connects every
// accepted connection to a fresh run of the ProxyCommand, for clients that
// cannot run one themselves (duplicity's paramiko backend). stop closes
// the listener and ends the running commands.
func startRelay(ctx context.Context, run Runner, sink Sink, command, host string, port int, env []string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("proxy relay: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	argv := ProxyArgv(command, host, port)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_, err := run.Run(rctx, chroot.Cmd{Argv: argv, Dir: "/", Env: env, In: conn, Stdout: conn, Stderr: sink.LogWriter()})
				if err != nil && rctx.Err() == nil {
					sink.Logf("proxy command for %s:%d: %v", host, port, err)
				}
			}()
		}
	}()
	stop := func() {
		cancel()
		ln.Close()
		wg.Wait()
	}
	return ln.Addr().String(), stop, nil
}

func splitRelay(addr string) (string, string) {
	h, p, _ := net.SplitHostPort(addr)
	return h, p
}
