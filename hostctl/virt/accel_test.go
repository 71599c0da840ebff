package virt

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The probe's console arrives in pieces: the panic line is found across
// write boundaries and after megabytes of boot messages, only once, and
// never in a console that does not hold it.
func TestPanicWatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   bool
	}{
		{"one write", []string{"[ 1.2] Kernel panic - not syncing: VFS: Unable to mount root fs\n"}, true},
		{"split", []string{"[ 1.2] Kernel pa", "nic - not syncing\n"}, true},
		{"byte by byte", strings.Split("boot\nKernel panic\n", ""), true},
		{"after 4 MiB", []string{strings.Repeat("x", 4<<20), "Kernel panic"}, true},
		{"no panic", []string{"Probing EDD (edd=off to disable)... ok\n", strings.Repeat("y", 1<<20)}, false},
		{"near miss", []string{"Kernel pani", "c", "k"}, true},
		{"other case", []string{"kernel panic"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			w := &panicWatch{found: func() { calls++ }}
			for _, s := range tc.writes {
				n, err := w.Write([]byte(s))
				require.NoError(t, err)
				require.Equal(t, len(s), n)
			}
			require.Equal(t, tc.want, w.seen())
			require.LessOrEqual(t, calls, 1)
			require.Equal(t, tc.want, calls == 1)
			require.Less(t, len(w.tail), len(panicLine), "only the tail a split line needs is kept")
		})
	}
}
