package run

import (
	"strings"
	"testing"
)

// TestPruneRefusal names what is wrong both ways and what to do, and
// lists at most five names.
func TestPruneRefusal(t *testing.T) {
	err := pruneRefusal([]string{"web-1"}, []string{"a", "b", "c", "d", "e", "f"})
	for _, want := range []string{
		"nothing pruned: 1 backup(s) this host recorded are gone without a prune (web-1)", "roll the repository back on the server",
		"6 backup(s) this host did not record (a, b, c, d, e, …)", "hostctl prune --trust",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}
