package run

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A tool's error text (grub-install's stderr) becomes the done record's
// warning: one line, bounded, or the host refuses the whole result.
func TestJoinWarning(t *testing.T) {
	require.Equal(t, "b", joinWarning("", "b"))
	require.Equal(t, "a; b c", joinWarning("a", "b\nc"))
	long := joinWarning(strings.Repeat("é", 400), strings.Repeat("x\x1b", 600))
	require.LessOrEqual(t, len(long), maxWarning)
	require.True(t, strings.HasSuffix(long, "…"))
	require.NotContains(t, long, "\x1b")
}
