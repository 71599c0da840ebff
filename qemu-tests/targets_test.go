package qemutests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/execx"
	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// gofakes3Module is the S3-compatible server the s3 tests run: a small Go
// program the test installs from the module proxy (seconds, no Debian
// package needed), keeping its buckets in a bolt database file.
const gofakes3Module = "github.com/johannesboyne/gofakes3/cmd/gofakes3@v1.2.0"

// s3Bucket is the bucket the test server starts with (S3 bucket names have
// at least three characters).
const s3Bucket = "backups"

// s3Server is an S3-compatible server on 127.0.0.1, path-style addressing.
type s3Server struct {
	port int
	root string // its data directory (one bolt database)
}

// startS3 installs (once, into the tests' bin directory) and starts an
// S3-compatible server on 127.0.0.1 with a temporary data directory and
// one bucket, s3Bucket.
func startS3(t *testing.T, e *env) *s3Server {
	t.Helper()
	bin := filepath.Join(e.bin, "gofakes3")
	if _, err := os.Stat(bin); err != nil {
		if _, err := exec.LookPath("go"); err != nil {
			testutil.SkipOrFail(t, "go is needed to install the S3 test server: run qemu-tests/setup-host.sh")
		}
		_, err := execx.Run(context.Background(), execx.Cmd{
			Argv: []string{"go", "install", gofakes3Module},
			Env:  []string{"GOBIN=" + e.bin, "GOFLAGS="},
		})
		require.NoError(t, err, "install the S3 test server")
	}
	s := &s3Server{port: freePort(t), root: t.TempDir()}
	// The bolt backend: the fs backend answers NoSuchBucket for a prefix
	// that has no objects yet (restic lists locks/ before writing any).
	serve(t, "gofakes3", bin, "-host", fmt.Sprintf("127.0.0.1:%d", s.port), "-backend", "bolt",
		"-bolt.db", filepath.Join(s.root, "s3.db"), "-initialbucket", s3Bucket, "-quiet")
	waitListen(t, s.port)
	return s
}

// ftpServer is pyftpdlib on 127.0.0.1 with one user that may write.
type ftpServer struct {
	port           int
	root           string
	user, password string
}

// startFTP starts Debian's pyftpdlib on 127.0.0.1. Passive replies name
// 10.0.2.2, the host as the appliance sees it, so data connections go the
// same way as the control connection.
func startFTP(t *testing.T) *ftpServer {
	t.Helper()
	// Debian's python3, not whichever python3 is first on PATH.
	const python = "/usr/bin/python3"
	if _, err := execx.Output(context.Background(), python, "-c", "import pyftpdlib"); err != nil {
		testutil.SkipOrFail(t, "python3-pyftpdlib is not installed: run qemu-tests/setup-host.sh")
	}
	s := &ftpServer{port: freePort(t), root: t.TempDir(), user: "backup", password: "ftp secret"}
	serve(t, "pyftpdlib", python, "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", fmt.Sprint(s.port),
		"-n", guestHost, "-w", "-d", s.root, "-u", s.user, "-P", s.password)
	waitListen(t, s.port)
	return s
}

// serve runs a server until the test ends and logs its output then.
func serve(t *testing.T, name string, argv ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	var log syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := execx.Run(ctx, execx.Cmd{Argv: argv, Stdout: &log, Stderr: &log})
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		err := <-done
		t.Logf("%s ended (%v); its log:\n%s", name, err, log.String())
	})
}
