package run

import "testing"

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/sysroot/snapshot`: "/sysroot/snapshot", `/mnt/with\040space`: "/mnt/with space", `/a\134b`: `/a\b`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUsedBytesOfRoot(t *testing.T) {
	if usedBytes("/") <= 0 {
		t.Error("usedBytes(/) should see the root filesystem")
	}
}
