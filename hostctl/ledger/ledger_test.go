package ledger

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRecordListForget(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir)
	require.NoError(t, err)
	a, err := l.Record(Entry{RunID: "r", Kind: KindFile, Path: "/x/job.img"})
	require.NoError(t, err)
	b, err := l.Record(Entry{RunID: "r", Kind: KindDomain, Name: "hostctl-job-web"})
	require.NoError(t, err)
	require.Less(t, a.Seq, b.Seq)

	// A second process (the next run) sees both, oldest first.
	l2, err := Open(dir)
	require.NoError(t, err)
	es, err := l2.List()
	require.NoError(t, err)
	require.Len(t, es, 2)
	require.Equal(t, "/x/job.img", es[0].Path)
	require.Equal(t, "hostctl-job-web", es[1].Name)

	require.NoError(t, l2.Forget(es[1]))
	require.NoError(t, l2.Forget(es[1]), "forgetting twice is harmless")
	es, err = l.List()
	require.NoError(t, err)
	require.Len(t, es, 1)
}

func TestCorruptEntryIsAnError(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "1-file.json"), []byte("{"), 0o600))
	_, err = l.List()
	require.ErrorContains(t, err, "1-file.json")
}
