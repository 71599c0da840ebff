package textsafe

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// Encoded JSON keeps DEL, C1 controls and bidi overrides raw; JSON makes
// them escapes, and the value decodes to the same text.
func TestJSON(t *testing.T) {
	in := map[string]string{"path": "etc/\x1b]0;pwned\a\u009b1m\u202eevil\x7f ok ü", "raw": "\xff"}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	b = append(b, '\n')
	got := JSON(b)
	require.Equal(t, `{"path":"etc/\u001b]0;pwned\u0007\u009b1m\u202eevil\u007f ok ü","raw":"\ufffd"}`+"\n", string(got))
	var back map[string]string
	require.NoError(t, json.Unmarshal(got, &back))
	require.Equal(t, in["path"], back["path"])

	clean := []byte(`{"step":"mount"}` + "\n")
	require.Equal(t, &clean[0], &JSON(clean)[0], "nothing to escape: no copy")
}
