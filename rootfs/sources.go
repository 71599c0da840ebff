package rootfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// AptSource is one "deb" entry of an APT sources file.
type AptSource struct {
	URI        string
	Suites     []string
	Components []string
}

// ParseSources reads an APT sources file: deb822 style when name ends in
// ".sources", one-line style otherwise. deb-src entries, disabled stanzas and
// [options] are skipped; they do not matter for choosing a mirror.
func ParseSources(name string, data []byte) ([]AptSource, error) {
	if strings.HasSuffix(name, ".sources") {
		return parseDeb822(data), nil
	}
	var out []AptSource
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		// Drop "[arch=amd64 signed-by=…]".
		if i := strings.IndexByte(line, '['); i >= 0 {
			if j := strings.IndexByte(line[i:], ']'); j >= 0 {
				line = line[:i] + line[i+j+1:]
			}
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		out = append(out, AptSource{URI: f[1], Suites: []string{f[2]}, Components: f[3:]})
	}
	return out, sc.Err()
}

func parseDeb822(data []byte) []AptSource {
	var out []AptSource
	for _, stanza := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		var last string
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if (line[0] == ' ' || line[0] == '\t') && last != "" {
				fields[last] += " " + strings.TrimSpace(line)
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
		if !contains(strings.Fields(fields["types"]), "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, AptSource{
				URI:        uri,
				Suites:     strings.Fields(fields["suites"]),
				Components: strings.Fields(fields["components"]),
			})
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Mirrors are the archive URIs the userland is installed from.
type Mirrors struct {
	Archive  string // serves SUITE and SUITE-updates, e.g. http://deb.debian.org/debian
	Security string // serves SUITE-security; "" = none
}

// PickMirrors chooses, from the host's sources, the archive that serves suite
// and the one that serves suite-security. Using the host's own mirror (or
// proxy) is what makes the build work where only that is reachable.
func PickMirrors(sources []AptSource, suite string) (Mirrors, error) {
	var m Mirrors
	for _, s := range sources {
		if m.Archive == "" && contains(s.Suites, suite) && contains(s.Components, "main") {
			m.Archive = s.URI
		}
		if m.Security == "" && (contains(s.Suites, suite+"-security") || contains(s.Suites, suite+"/updates")) {
			m.Security = s.URI
		}
	}
	if m.Archive == "" {
		return m, fmt.Errorf("no APT source for suite %q with component main", suite)
	}
	return m, nil
}

// HostMirrors reads /etc/apt/sources.list and sources.list.d/*.{list,sources}
// below root ("/" normally) and picks the mirrors for suite.
func HostMirrors(root, suite string) (Mirrors, error) {
	dir := filepath.Join(root, "etc/apt")
	files := []string{filepath.Join(dir, "sources.list")}
	more, _ := filepath.Glob(filepath.Join(dir, "sources.list.d", "*"))
	sort.Strings(more)
	files = append(files, more...)
	var all []AptSource
	for _, f := range files {
		if !strings.HasSuffix(f, ".list") && !strings.HasSuffix(f, ".sources") {
			continue
		}
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return Mirrors{}, err
		}
		src, err := ParseSources(f, data)
		if err != nil {
			return Mirrors{}, fmt.Errorf("%s: %w", f, err)
		}
		all = append(all, src...)
	}
	m, err := PickMirrors(all, suite)
	if err != nil {
		return m, fmt.Errorf("host APT sources (%s): %w; set a mirror explicitly", dir, err)
	}
	return m, nil
}

// HostSuite is the codename of the host's Debian release (os-release
// VERSION_CODENAME), so the appliance's tools match the host's.
func HostSuite(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "etc/os-release"))
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VERSION_CODENAME="); ok {
			if v = strings.Trim(v, `"'`); v != "" {
				return v, nil
			}
		}
	}
	return "", errors.New("os-release: no VERSION_CODENAME")
}

// AptLines are the one-line sources given to mmdebstrap.
func AptLines(m Mirrors, suite string) []string {
	lines := []string{fmt.Sprintf("deb %s %s main", m.Archive, suite)}
	if suite == "sid" || suite == "unstable" {
		return lines // no -updates or -security suites
	}
	lines = append(lines, fmt.Sprintf("deb %s %s-updates main", m.Archive, suite))
	if m.Security != "" {
		lines = append(lines, fmt.Sprintf("deb %s %s-security main", m.Security, suite))
	}
	return lines
}
