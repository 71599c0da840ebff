package textsafe

import (
	"strings"
	"testing"
)

func TestLine(t *testing.T) {
	for _, tc := range []struct{ in, line, text string }{
		{"etc/passwd", "etc/passwd", "etc/passwd"},
		{"Grüße/日本", "Grüße/日本", "Grüße/日本"},
		{"\x1b]0;pwned\a", `\x1b]0;pwned\x07`, `\x1b]0;pwned\x07`},
		{"\x1b[2J\x1b[31m", `\x1b[2J\x1b[31m`, `\x1b[2J\x1b[31m`},
		{"a\tb\nc\r", `a\x09b\x0ac\x0d`, "a\tb\nc\\x0d"},
		{"del\x7f", `del\x7f`, `del\x7f`},
		{"csi\u009b1m", `csi\u009b1m`, `csi\u009b1m`},
		{"raw c1 \x9b1m", `raw c1 \x9b1m`, `raw c1 \x9b1m`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`, `bad \xff\xfe utf8`},
		{"evil\u202etxt.exe", `evil\u202etxt.exe`, `evil\u202etxt.exe`},
		{"nul\x00", `nul\x00`, `nul\x00`},
	} {
		if got := Line(tc.in); got != tc.line {
			t.Errorf("Line(%q) = %q, want %q", tc.in, got, tc.line)
		}
		if got := Text(tc.in); got != tc.text {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.text)
		}
	}
}

// Clean text is returned without a copy: the sinks call Line on every
// progress line.
func TestLineNoAllocWhenClean(t *testing.T) {
	s := strings.Repeat("var/lib/dpkg/info/", 10)
	if n := testing.AllocsPerRun(100, func() { _ = Line(s) }); n != 0 {
		t.Errorf("Line allocates %v times for clean text", n)
	}
}

func FuzzLine(f *testing.F) {
	f.Add("\x1b[31m\u009b\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{Line(s), Text(s)} {
			for _, r := range out {
				if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x202e || r == '\uFFFD' && !strings.ContainsRune(s, '\uFFFD') {
					t.Fatalf("%q → %q keeps %U", s, out, r)
				}
			}
		}
		if strings.ContainsAny(Line(s), "\n\t") {
			t.Fatalf("Line(%q) keeps a line break or tab", s)
		}
	})
}

func TestHasControl(t *testing.T) {
	for s, want := range map[string]bool{
		"nas.example.net": false, "Grüße": false, "a b": false,
		"a\nb": true, "tab\t": true, "del\x7f": true, "csi\u009b": true, "bad \xff": true, "nul\x00": true,
	} {
		if got := HasControl(s); got != want {
			t.Errorf("HasControl(%q) = %v, want %v", s, got, want)
		}
	}
}
