package testutil

import (
	"strings"
	"testing"
)

// Hostile is guest-controlled text as an attacker writes it: an OSC title
// change, a screen clear, colour, an 8-bit CSI, a right-to-left override
// and DEL. What reaches the operator must carry none of it raw.
const Hostile = "\x1b]0;pwned\a\x1b[2J\x1b[31mred\u009b1m\u202eevil\x7f"

// RequireNoControl fails when s has a byte or rune a terminal acts on
// (C0 and C1 controls, DEL, the right-to-left override), newlines (line
// ends) aside.
func RequireNoControl(t testing.TB, s string) {
	t.Helper()
	for _, r := range strings.ReplaceAll(s, "\n", "") {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' {
			t.Fatalf("control character %U in %q", r, s)
		}
	}
}
