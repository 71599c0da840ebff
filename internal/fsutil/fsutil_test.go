package fsutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWriteFileAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, WriteFileAtomic(p, []byte("one"), 0o600))
	require.NoError(t, WriteFileAtomic(p, []byte("two"), 0o640))
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "two", string(data))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(p))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temp file left")
}

func TestLockWaits(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	release, err := Lock(p, nil)
	require.NoError(t, err)
	waited := make(chan struct{})
	got := make(chan struct{})
	go func() {
		r, err := Lock(p, func() { close(waited) })
		if err == nil {
			close(got)
			r()
		}
	}()
	<-waited
	select {
	case <-got:
		t.Fatal("second lock taken while the first is held")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	<-got
}
