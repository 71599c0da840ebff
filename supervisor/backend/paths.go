package backend

import (
	"fmt"
	"path"
	"strings"
)

// The client's sources and excludes, as every tool takes them.

// SourceArgs maps the client's absolute source paths to borg arguments
// relative to SnapshotDir (borg runs with cwd there): "/" → ".",
// "/srv/data" → "srv/data". Archives then hold the client's paths without
// the leading slash, whatever the appliance's mount point.
func SourceArgs(sources []string) ([]string, error) {
	if len(sources) == 0 {
		return []string{"."}, nil
	}
	var out []string
	for _, s := range sources {
		if !strings.HasPrefix(s, "/") {
			return nil, fmt.Errorf("backup source %q: must be an absolute path", s)
		}
		c := path.Clean(s)
		if strings.Contains(c, "/../") || strings.HasSuffix(c, "/..") {
			return nil, fmt.Errorf("backup source %q: must not contain ..", s)
		}
		if c == "/" {
			out = append(out, ".")
		} else {
			out = append(out, strings.TrimPrefix(c, "/"))
		}
	}
	return out, nil
}

// ExcludePatterns maps the client's excludes to borg patterns matching the
// stored (relative) paths:
//
//	/var/cache     → pp:var/cache    (the directory and all below)
//	/home/*/.cache → sh:home/*/.cache
//	*.tmp          → sh:**/*.tmp     (anywhere)
func ExcludePatterns(excludes []string) ([]string, error) {
	var out []string
	for _, e := range excludes {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		glob := strings.ContainsAny(e, "*?[")
		if !strings.HasPrefix(e, "/") {
			if !glob && strings.Contains(e, "/") {
				return nil, fmt.Errorf("backup exclude %q: a path must be absolute", e)
			}
			out = append(out, "sh:**/"+strings.TrimPrefix(e, "./"))
			continue
		}
		c := strings.TrimPrefix(path.Clean(e), "/")
		if c == "" {
			return nil, fmt.Errorf("backup exclude %q: excludes everything", e)
		}
		if glob {
			out = append(out, "sh:"+c)
		} else {
			out = append(out, "pp:"+c)
		}
	}
	return out, nil
}

// ExcludeArgs maps the client's excludes to --exclude arguments of restic
// and duplicity: an absolute path (or pattern) below the snapshot dir, the
// tools' paths; any other pattern as anywhere makes it match a name at any
// depth.
func ExcludeArgs(excludes []string, snapshot string, anywhere func(pattern string) string) []string {
	var argv []string
	for _, e := range excludes {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case strings.HasPrefix(e, "/"):
			argv = append(argv, "--exclude", path.Join(snapshot, e))
		default:
			argv = append(argv, "--exclude", anywhere(e))
		}
	}
	return argv
}
