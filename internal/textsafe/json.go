package textsafe

import (
	"fmt"
	"unicode/utf8"
)

// JSON escapes, in b as encoding/json wrote it, what JSON leaves as it is
// but a terminal acts on: DEL, C1 controls and the bidirectional
// overrides become \uNNNN escapes, which decode to the same text. So a
// JSON line is safe on a terminal and loses nothing. encoding/json has
// escaped the C0 controls (and made the text valid UTF-8) already; the
// newline that ends an encoded value stays.
func JSON(b []byte) []byte {
	i := firstUnsafeJSON(b)
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:i]...)
	for i < len(b) {
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			out = append(out, `\ufffd`...)
		case unsafeRune(r, true):
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}

func firstUnsafeJSON(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			if unsafeRune(rune(b[i]), true) {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if (r == utf8.RuneError && n <= 1) || unsafeRune(r, true) {
			return i
		}
		i += n
	}
	return -1
}
