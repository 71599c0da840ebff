// Package configtest gives tests a loadable copy of the shipped example
// configuration, with the secret files it refers to created (they are not
// in the source tree: a secret's mode cannot be kept by git).
package configtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// Passphrase is the content of the example's passphrase file.
const Passphrase = "example passphrase, not secret"

// Example copies hostctl/config/example of the source tree into a temporary
// directory with the shipped profiles/ next to its hostctl.toml (as they are
// installed), creates the example client's passphrase
// secrets/local-borg-web.passphrase with mode 0600, and returns the path of
// the copied hostctl.toml.
func Example(t testing.TB) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("configtest: cannot find the source tree")
	}
	root := filepath.Join(filepath.Dir(self), "..", "..", "..")
	tmp := t.TempDir()
	example := filepath.Join(tmp, "example")
	for _, c := range []struct{ src, dst string }{
		{filepath.Join("hostctl", "config", "example"), example},
		{"profiles", filepath.Join(example, "profiles")},
	} {
		if err := os.CopyFS(c.dst, os.DirFS(filepath.Join(root, c.src))); err != nil {
			t.Fatalf("configtest: copy %s: %v", c.src, err)
		}
	}
	// The copy is read-only where the tree is (a module cache); tests edit it.
	if err := filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(example, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "local-borg-web.passphrase"), []byte(Passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The other shipped profiles name more secret files (keys, identities,
	// credentials); placeholders stand in for them.
	clients, err := filepath.Glob(filepath.Join(example, "clients", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, name := range secretNames(t, filepath.Join(example, "profiles")) {
		if !strings.Contains(name, "{client}") {
			names = append(names, name)
			continue
		}
		for _, c := range clients {
			names = append(names, strings.ReplaceAll(name, "{client}", strings.TrimSuffix(filepath.Base(c), ".toml")))
		}
	}
	for _, name := range names {
		p := filepath.Join(secrets, name)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := os.WriteFile(p, []byte("placeholder for "+name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(example, "hostctl.toml")
}

// secretRef matches a "secrets/NAME" path in a profile.
var secretRef = regexp.MustCompile(`"secrets/([^"/]+)"`)

// secretNames lists the secret file names the profiles in dir refer to.
func secretNames(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range secretRef.FindAllSubmatch(data, -1) {
			names = append(names, string(m[1]))
		}
	}
	return names
}
