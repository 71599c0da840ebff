package boot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseUptime reads the first field of /proc/uptime: seconds since the
// kernel started, with centisecond resolution.
func ParseUptime(data string) (time.Duration, error) {
	f := strings.Fields(data)
	if len(f) == 0 {
		return 0, fmt.Errorf("parse uptime %q: empty", data)
	}
	s, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("parse uptime %q: %w", data, err)
	}
	return time.Duration(s * float64(time.Second)).Round(10 * time.Millisecond), nil
}
