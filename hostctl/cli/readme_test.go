package cli

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite the generated sections of README.md")

// TestReadmeMirrorsHelp fails when README.md's command table or exit codes
// differ from hostctl's help; go generate ./hostctl/cli rewrites them.
func TestReadmeMirrorsHelp(t *testing.T) {
	const readme = "../../README.md"
	data, err := os.ReadFile(readme)
	require.NoError(t, err)
	s := string(data)
	for _, sec := range []struct{ begin, end, body string }{
		{readmeCommandsBegin, readmeCommandsEnd, readmeCommands()},
		{readmeExitCodesBegin, readmeExitCodesEnd, readmeExitCodes()},
	} {
		b, e := strings.Index(s, sec.begin), strings.Index(s, sec.end)
		require.True(t, b >= 0 && e > b, "README.md has no %q … %q section", sec.begin, sec.end)
		want := "\n" + sec.body
		if *updateReadme {
			s = s[:b+len(sec.begin)] + want + s[e:]
			continue
		}
		require.Equal(t, want, s[b+len(sec.begin):e], "README.md differs from hostctl's help: run go generate ./hostctl/cli")
	}
	if *updateReadme {
		require.NoError(t, os.WriteFile(readme, []byte(s), 0o644))
	}
}
