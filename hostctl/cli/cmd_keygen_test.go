package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSetProfileKeys(t *testing.T) {
	const enc, sign = "F69B8E65CCB55ABE4DDDFD57F4129B3F748E9607", "C9F597B7ED29321B73779F232BB6694FC071B178"
	for _, c := range []struct{ name, in, want string }{
		{"replace", `backend = "duplicity"
[encryption]
# recipients
encrypt_keys = ["0123456789ABCDEF0123456789ABCDEF01234567"]   # old
sign_key = "89ABCDEF0123456789ABCDEF0123456789ABCDEF"
key_files = ["a.asc"]
`, `backend = "duplicity"
[encryption]
# recipients
encrypt_keys = ["` + enc + `"]   # old
sign_key = "` + sign + `"
key_files = ["a.asc"]
`},
		{"add", `backend = "duplicity"
[encryption]
key_files = ["a.asc"]
`, `backend = "duplicity"
[encryption]
encrypt_keys = ["` + enc + `"]
sign_key = "` + sign + `"
key_files = ["a.asc"]
`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "p.toml")
			require.NoError(t, os.WriteFile(p, []byte(c.in), 0o640))
			require.NoError(t, setProfileKeys(p, enc, sign))
			got, err := os.ReadFile(p)
			require.NoError(t, err)
			require.Equal(t, c.want, string(got))
			fi, _ := os.Stat(p)
			require.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "mode kept")
		})
	}
	p := filepath.Join(t.TempDir(), "p.toml")
	require.NoError(t, os.WriteFile(p, []byte("backend = \"duplicity\"\n"), 0o600))
	require.Error(t, setProfileKeys(p, enc, sign), "no [encryption] table: the operator is told what to set")
}
