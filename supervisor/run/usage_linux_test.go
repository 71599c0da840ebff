package run

import "testing"

func TestUsedBytesOfRoot(t *testing.T) {
	if usedBytes("/") <= 0 {
		t.Error("usedBytes(/) should see the root filesystem")
	}
}
