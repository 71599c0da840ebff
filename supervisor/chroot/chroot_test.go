package chroot

import (
	"reflect"
	"testing"
)

func TestPriorityArgv(t *testing.T) {
	argv := []string{"/usr/bin/borg", "create"}
	for _, tc := range []struct {
		nice  int
		class string
		want  []string
	}{
		{0, "", argv},
		{10, "", append([]string{"/usr/bin/nice", "-n", "10"}, argv...)},
		{0, "idle", append([]string{"/usr/bin/ionice", "-c", "3"}, argv...)},
		{19, "best-effort", append([]string{"/usr/bin/nice", "-n", "19", "/usr/bin/ionice", "-c", "2", "-n", "7"}, argv...)},
	} {
		if got := PriorityArgv(tc.nice, tc.class, argv); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("PriorityArgv(%d, %q) = %q", tc.nice, tc.class, got)
		}
	}
}
