package backend

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// duplicity exits 0 after files it could not read: it logs a warning per
// file and goes on (an lstat that fails with an error it does not expect,
// such as EUCLEAN, ends it with exit status 30 instead). Its --log-file is
// machine-readable: records of "LEVEL CODE [EXTRA]" and the message in
// lines that start with ". ", a blank line after each. The warnings that
// mean a file is not (completely) in the backup, as duplicity 0.8 words
// them (the appliance runs it with LC_ALL=C, untranslated):
var dupUnreadable = []*regexp.Regexp{
	regexp.MustCompile(`^Error (.+) getting delta for (.+)$`),           // reading a file (diffdir)
	regexp.MustCompile(`^()Error accessing possibly locked file (.+)$`), // cannot stat or read (selection, code 9 or 10)
	regexp.MustCompile(`^()Error initializing file (.+)$`),              // code 8
	regexp.MustCompile(`^()Error listing directory (.+)$`),              // robust.listpath
}

// ParseDuplicityLog reads a duplicity --log-file and adds to u every file
// its warnings say it could not read, copying those warnings to log (the
// job log: duplicity prints them on stdout, which is not kept); it returns
// how many such warnings there were (duplicity repeats some).
func ParseDuplicityLog(r io.Reader, u *unreadable, log io.Writer) int {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	level := ""
	var msg []string
	flush := func() {
		if level == "WARNING" && len(msg) > 0 {
			m := strings.Join(msg, "\n")
			for _, re := range dupUnreadable {
				if p := re.FindStringSubmatch(m); p != nil {
					fmt.Fprintf(log, "duplicity: %s\n", printable(m))
					u.add(p[2], p[1])
					n++
					break
				}
			}
		}
		level, msg = "", nil
	}
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, ". "):
			msg = append(msg, l[2:])
		case l == "." || l == "":
			// "." is an empty message line; "" ends the record.
			if l == "" {
				flush()
			}
		default:
			flush()
			f := strings.Fields(l)
			if len(f) >= 2 {
				if _, err := strconv.Atoi(f[1]); err == nil {
					level = f[0]
				}
			}
		}
	}
	flush()
	return n
}

var dupErrors = regexp.MustCompile(`(?m)^Errors ([0-9]+)`)

// duplicityErrors is the Errors count of duplicity's backup statistics
// (files it could not read while selecting them).
func duplicityErrors(out []byte) int64 {
	m := dupErrors.FindSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}
