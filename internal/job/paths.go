package job

import (
	"fmt"
	"path"
	"strings"
)

// CleanPaths checks the paths of a file-level restore: relative to the
// backed-up tree's root ("etc/nginx"; a leading "/" is accepted and
// dropped), no "..", not the root itself.
func CleanPaths(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		c := path.Clean("/" + strings.TrimSpace(p))
		if c == "/" {
			return nil, fmt.Errorf("restore path %q: names the whole tree; leave --path out instead", p)
		}
		for _, el := range strings.Split(p, "/") {
			if el == ".." {
				return nil, fmt.Errorf("restore path %q: must not contain ..", p)
			}
		}
		out = append(out, strings.TrimPrefix(c, "/"))
	}
	return out, nil
}
