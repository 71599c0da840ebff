// Package textsafe makes text that a guest or an appliance wrote safe to
// show on the operator's terminal, in a log line or a mail: every byte or
// character a terminal acts on becomes a visible escape, so that a file
// name or a hook's stderr cannot retitle the terminal, clear it, move the
// cursor or reorder what the operator reads.
package textsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line returns s for one line of output: C0 controls (tab and newline
// too), DEL, C1 controls, bytes that are not UTF-8 and the bidirectional
// overrides become \xNN or \uNNNN. Text that needs none of this is
// returned as it is, without a copy.
func Line(s string) string { return clean(s, false) }

// Text is Line for a block of lines: newlines and tabs stay.
func Text(s string) string { return clean(s, true) }

func clean(s string, block bool) string {
	i := firstUnsafe(s, block)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r, block) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r, block):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// firstUnsafe is the index of the first byte that needs an escape, or -1.
func firstUnsafe(s string, block bool) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if unsafeRune(rune(c), block) {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n <= 1) || unsafeRune(r, block) {
			return i
		}
		i += n
	}
	return -1
}

// HasControl says whether s has a C0 or C1 control character, DEL or bytes
// that are not UTF-8: what a name that reaches command lines, config files
// and terminals (a domain, an ssh user or host) must not have.
func HasControl(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 })
}

func unsafeRune(r rune, block bool) bool {
	switch {
	case block && (r == '\n' || r == '\t'):
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		// Bidirectional overrides, isolates and marks: they reorder the
		// rest of the line ("evil\u202etxt.exe").
		return true
	}
	return false
}
