package main

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMain runs main itself when the test binary is started as hostctl
// (HOSTCTL_TEST_MAIN holds its one argument).
func TestMain(m *testing.M) {
	if arg := os.Getenv("HOSTCTL_TEST_MAIN"); arg != "" {
		os.Args = []string{"hostctl", arg}
		main()
		return
	}
	os.Exit(m.Run())
}

// A program reading hostctl's stdout (--progress json, the table) that
// goes away must not kill hostctl with SIGPIPE in the middle of a job:
// the write fails and hostctl goes on to clean up and exit as usual.
func TestStdoutReaderGone(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	require.NoError(t, r.Close())
	defer w.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "HOSTCTL_TEST_MAIN=--help")
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &errb
	require.NoError(t, cmd.Run(), "hostctl --help with its stdout's reader gone: %s", errb.String())
}
