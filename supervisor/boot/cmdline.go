package boot

import (
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// Cmdline is the parsed kernel command line: key=value pairs, and bare
// words mapped to "".
type Cmdline map[string]string

// ParseCmdline splits /proc/cmdline the way the kernel does: on spaces,
// except inside double quotes, which are removed.
func ParseCmdline(s string) Cmdline {
	c := Cmdline{}
	var words []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		words = append(words, cur.String())
	}
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		c[k] = v
	}
	return c
}

// Shell reports whether the operator asked for a rescue shell (sb.mode=shell).
func (c Cmdline) Shell() bool { return c[job.CmdlineMode] == job.ModeShell }

// JobExpected says hostctl booted this appliance for a job: without a job
// disk it must fail and power off rather than wait at a shell.
func (c Cmdline) JobExpected() bool { return c[job.CmdlineMode] == job.CmdlineModeJob }
