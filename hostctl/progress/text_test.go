package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

func TestStatusLine(t *testing.T) {
	for _, tc := range []struct {
		bytes, files, total int64
		elapsed             time.Duration
		path, want          string
	}{
		{0, 0, 0, 0, "", "web: 0 B"},
		{10 << 20, 12, 0, 2 * time.Second, "etc/passwd", "web: 10.0 MiB, 12 files, 5.0 MiB/s, etc/passwd"},
		{50 << 20, 0, 100 << 20, 10 * time.Second, "", "web: [##########..........]  50% 50.0 MiB / 100.0 MiB, 5.0 MiB/s, ETA 10s"},
		{200 << 20, 0, 100 << 20, 10 * time.Second, "", "web: [####################] 100% 200.0 MiB / 100.0 MiB, 20.0 MiB/s"},
	} {
		require.Equal(t, tc.want, statusLine("web", tc.bytes, tc.files, tc.total, tc.elapsed, tc.path))
	}
}

// Not a terminal: plain lines, throttled; a terminal: one redrawn line,
// cleared before the next normal line.
func TestProgressForms(t *testing.T) {
	var buf bytes.Buffer
	p := NewText(&buf, false)
	p.Begin("web", job.ModeBackup)
	p.Record("web", job.Progress{Bytes: 1 << 20}.Record())
	p.Record("web", job.Progress{Bytes: 2 << 20}.Record()) // throttled
	p.Record("web", job.Done{Status: "ok"}.Record())
	require.Equal(t, "web: 1.0 MiB\nweb: appliance done: ok\n", buf.String())

	buf.Reset()
	p = NewText(&buf, true)
	p.Begin("web", job.ModeBackup)
	p.Record("web", job.Progress{Bytes: 1 << 20}.Record())
	p.Record("web", job.Done{Status: "ok"}.Record())
	require.True(t, strings.HasPrefix(buf.String(), "\r\033[Kweb: 1.0 MiB\r\033[Kweb: appliance done: ok\n"), "%q", buf.String())
}
