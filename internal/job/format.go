package job

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// FormatMark is how a binary says which job format (Version) it speaks
// without being run: the supervisor carries it (it logs it at start), and
// the image builder reads it from the supervisor's file into the image's
// manifest, which hostctl checks before it boots an appliance. Reading,
// not running: the supervisor is a PID 1 program, which mounts and powers
// off, not one to start on the build host. TestFormatMark keeps it equal
// to Version.
const FormatMark = "\x00snapshot-backup-job-format=2\x00"

// ReadFormatMark finds the job format a binary speaks by its FormatMark;
// a binary without one, or with marks of several formats, is an error.
func ReadFormatMark(data []byte) (int, error) {
	// The prefix is cut from FormatMark, so that a binary that links this
	// function holds no second string that could pass for a mark.
	prefix := []byte(FormatMark[:strings.IndexByte(FormatMark, '=')+1])
	found := -1
	for rest := data; ; {
		i := bytes.Index(rest, prefix)
		if i < 0 {
			break
		}
		rest = rest[i+len(prefix):]
		end := bytes.IndexByte(rest, 0)
		if end < 1 || end > 6 {
			continue
		}
		v, err := strconv.Atoi(string(rest[:end]))
		if err != nil {
			continue
		}
		if found >= 0 && v != found {
			return 0, fmt.Errorf("marks of job formats %d and %d", found, v)
		}
		found = v
	}
	if found < 0 {
		return 0, fmt.Errorf("no job format mark (%q)", strings.Trim(FormatMark, "\x00"))
	}
	return found, nil
}
