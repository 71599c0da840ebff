package testutil

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The helpers run in a child test process with and without CI: a skip
// outside CI, a failure under it, naming what is missing.
func TestSkipOrFailUnderCI(t *testing.T) {
	if os.Getenv("SB_TESTUTIL_CHILD") != "" {
		NeedTool(t, "no-such-tool-sb", "apt-get install nothing")
		t.Fatal("NeedTool returned for a missing tool")
	}
	for _, tc := range []struct {
		ci   string
		want string
		fail bool
	}{
		{"", "--- SKIP: TestSkipOrFailUnderCI", false},
		{"true", "--- FAIL: TestSkipOrFailUnderCI", true},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipOrFailUnderCI$", "-test.v")
		cmd.Env = append(os.Environ(), "SB_TESTUTIL_CHILD=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		require.Equal(t, tc.fail, err != nil, "CI=%q: %v\n%s", tc.ci, err, out)
		require.Contains(t, string(out), tc.want)
		require.Contains(t, string(out), "no-such-tool-sb is not installed (apt-get install nothing)")
		if tc.fail {
			require.True(t, strings.Contains(string(out), "CI: cannot run: "), "%s", out)
		}
	}
}

func TestNeedToolFound(t *testing.T) {
	require.NotEmpty(t, NeedTool(t, "sh", ""))
}
