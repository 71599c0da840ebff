package progress

import (
	"fmt"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/internal/units"
)

// statusLine renders one progress state: bytes, files, rate, and with a
// known total a bar, percentage and ETA. A pure function for table tests.
func statusLine(client string, bytes, files, total int64, elapsed time.Duration, path string) string {
	var b strings.Builder
	b.WriteString(client + ": ")
	if total > 0 {
		frac := float64(bytes) / float64(total)
		if frac > 1 {
			frac = 1
		}
		const width = 20
		n := int(frac * width)
		fmt.Fprintf(&b, "[%s%s] %3.0f%% ", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100)
	}
	b.WriteString(units.Bytes(bytes))
	if total > 0 {
		b.WriteString(" / " + units.Bytes(total))
	}
	if files > 0 {
		fmt.Fprintf(&b, ", %d files", files)
	}
	if secs := elapsed.Seconds(); secs >= 1 && bytes > 0 {
		rate := float64(bytes) / secs
		fmt.Fprintf(&b, ", %s/s", units.Bytes(int64(rate)))
		if total > bytes {
			eta := time.Duration(float64(total-bytes) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", ETA %s", eta.Round(time.Second))
		}
	}
	if path != "" {
		b.WriteString(", " + path)
	}
	return b.String()
}

// truncate shortens s to n runes for a one-line display.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
