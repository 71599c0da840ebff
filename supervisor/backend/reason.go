package backend

import (
	"regexp"
	"strings"
)

// maxReason caps the reason's length: it is one line in a report.
const maxReason = 300

// Reason distils a backup tool's last messages (oldest first; one message
// may span lines: borg puts a whole Python traceback into one log message)
// into the one line an operator reads in the result. The full messages stay
// in the job log.
//
// It prefers the line that names the cause (no space left, connection
// refused, wrong passphrase, …) over the tool's final complaint ("Connection
// closed by remote host", "Giving up"), reduces a traceback to its exception
// line, drops noise (JSON, gpg log frames, platform dumps) and puts a short
// plain-words hint in front of a known cause.
func Reason(msgs []string) string {
	var lines []string
	for _, m := range msgs {
		if strings.Contains(m, "Traceback (most recent call last)") {
			if l := exceptionLine(m); l != "" {
				lines = append(lines, l)
			}
			continue
		}
		for _, l := range strings.Split(m, "\n") {
			if l = cleanLine(l); l != "" {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) == 0 {
		return ""
	}
	pick, hint := lines[len(lines)-1], ""
	for _, l := range lines {
		if h, ok := causeHint(l); ok {
			pick, hint = l, h // the last cause wins
		}
	}
	if hint == "" {
		hint, _ = fallbackHint(pick)
	}
	if hint != "" && !strings.HasPrefix(strings.ToLower(pick), hint) {
		pick = hint + ": " + pick
	}
	if len(pick) > maxReason {
		pick = strings.ToValidUTF8(pick[:maxReason-len("…")], "") + "…"
	}
	return pick
}

// pyException is the last line of a Python traceback: "OSError: [Errno 28] …".
var pyException = regexp.MustCompile(`^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Failure)(: .*)?$`)

// exceptionLine is a traceback's exception line (without the platform
// details borg appends after it).
func exceptionLine(msg string) string {
	ls := strings.Split(msg, "\n")
	for i := len(ls) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(ls[i]); pyException.MatchString(l) {
			return l
		}
	}
	return ""
}

// noise are lines that never explain a failure.
var noise = []string{
	"{", "Traceback", "File \"", "=====", "Local Exception", "Remote Exception",
	"Is there a repository at the following location?",
	"Platform:", "Linux:", "Borg:", "PID:", "sys.argv:", "SSH_ORIGINAL_COMMAND:",
	"gpg: AES256", "gpg: encrypted with", "--------------[",
}

// cleanLine trims a line and the tools' prefixes ("Fatal: ", "Remote: ",
// "subprocess ssh: "), or returns "" for noise.
func cleanLine(l string) string {
	l = strings.TrimSpace(l)
	for _, n := range noise {
		if strings.HasPrefix(l, n) {
			return ""
		}
	}
	for _, p := range []string{"Fatal: ", "Remote: ", "subprocess ssh: "} {
		l = strings.TrimPrefix(l, p)
	}
	return l
}

// causes map what a line says to what it means, in the operator's words.
// The first matching pattern names the hint.
var causes = []struct {
	re   *regexp.Regexp
	hint string
}{
	{regexp.MustCompile(`(?i)no space left on device|disk quota exceeded|insufficient (disk )?space|EntityTooLarge|QuotaExceeded`), "target full"},
	{regexp.MustCompile(`(?i)passphrase .*(incorrect|wrong)|wrong password|bad session key|bad passphrase|passphrase check failed`), "wrong passphrase"},
	{regexp.MustCompile(`(?i)login incorrect|login failed|530 `), "ftp login refused"},
	{regexp.MustCompile(`(?i)permission denied \(publickey|authentication failed|too many authentication failures`), "ssh login refused"},
	{regexp.MustCompile(`(?i)host key verification failed|host key .* (mismatch|changed)|no .*host key is known|not found in known_hosts|hostkey.*not match`), "ssh host key not pinned or changed"},
	{regexp.MustCompile(`(?i)InvalidAccessKeyId|SignatureDoesNotMatch|Access Denied|AccessDenied|InvalidToken|403 Forbidden|No user exists with the provided access key`), "s3 credentials refused"},
	{regexp.MustCompile(`(?i)no public key|no secret key|unusable public key|public key not found|is not in the job's key files`), "gpg key missing"},
	{regexp.MustCompile(`(?i)ciphertext verification failed|integrity error|checksum mismatch|hash mismatch|invalid data returned|decompress(ion)? failed|corrupt`), "repository data damaged"},
	{regexp.MustCompile(`(?i)connection refused|no route to host|network is unreachable|connection timed out|timed out|could not resolve|name or service not known|temporary failure in name resolution|connection reset`), "target unreachable"},
}

func causeHint(l string) (string, bool) {
	for _, c := range causes {
		if c.re.MatchString(l) {
			return c.hint, true
		}
	}
	return "", false
}

// vague are final complaints that hide their cause; the hint says where
// to look.
var vague = []struct {
	re   *regexp.Regexp
	hint string
}{
	{regexp.MustCompile(`unable to start the sftp session|Connection closed by remote host|Is borg working on the server`), "ssh connection to the target failed (login refused, host key, or no sftp/borg there: see the job log)"},
}

func fallbackHint(l string) (string, bool) {
	for _, v := range vague {
		if v.re.MatchString(l) {
			return v.hint, true
		}
	}
	return "", false
}
