package boot

import (
	"strings"

	"golang.org/x/sys/unix"
)

// KernelLogTail returns the last n lines of the kernel log that mention
// about (all lines when about is ""), joined with "; ", to explain a failed
// mount (the mount syscall only says EINVAL).
func KernelLogTail(n int, about string) string {
	size, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil || size <= 0 {
		return ""
	}
	buf := make([]byte, size)
	m, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(buf[:m])), "\n") {
		if about == "" || strings.Contains(l, about) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		// "<3>[   12.345678] msg" → "msg"
		if j := strings.Index(l, "] "); j >= 0 && strings.HasPrefix(l, "<") {
			l = l[j+2:]
		}
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "; ")
}
