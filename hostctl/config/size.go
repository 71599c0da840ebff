package config

import (
	"fmt"
	"math/big"
	"strings"
)

// Size units are binary: "1K" is 1024 bytes, "8G" is 8 GiB, as in LVM and
// qemu-img, the tools these sizes end up in.
var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"P", 50}, {"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}}

// ParseSize reads "512M", "8G", "1.5G", "1T" (binary units; "8GiB" and a
// lower-case unit are accepted too) or a plain number of bytes. Fractions
// are rounded down to a whole byte.
func ParseSize(s string) (Size, error) {
	orig := s
	s = strings.TrimSpace(s)
	num, shift := s, uint(0)
	upper := strings.ToUpper(s)
	for _, u := range sizeUnits {
		for _, suf := range []string{u.suffix + "IB", u.suffix} {
			if strings.HasSuffix(upper, suf) {
				num, shift = s[:len(s)-len(suf)], u.shift
				break
			}
		}
		if shift != 0 {
			break
		}
	}
	num = strings.TrimSpace(num)
	bad := func(why string) (Size, error) {
		return 0, fmt.Errorf("invalid size %q: %s (want e.g. \"512M\", \"8G\", \"1.5T\" or a number of bytes)", orig, why)
	}
	if num == "" {
		return bad("no number")
	}
	if num[0] == '-' {
		return bad("negative")
	}
	// Digits and at most one dot only: big.Rat would also take "1/2" and "1e3".
	if strings.Count(num, ".") > 1 || strings.Trim(num, "0123456789.") != "" || num == "." {
		return bad("not a number with an optional unit K, M, G, T or P")
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return bad("not a number")
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), shift)))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return bad("too large")
	}
	return Size(n.Int64()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// String renders the size in the largest unit that divides it exactly
// ("8G", "1536M"), or in bytes.
func (s Size) String() string {
	for _, u := range sizeUnits {
		if s != 0 && s%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", s>>u.shift, u.suffix)
		}
	}
	return fmt.Sprintf("%d", int64(s))
}

// Bytes returns the size in bytes.
func (s Size) Bytes() int64 { return int64(s) }
