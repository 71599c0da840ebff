package backend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReason distils real output captured from borg 1.2.4, restic 0.14.0
// and duplicity 0.8.22 (Debian bookworm, as in the appliance) in each fault
// into the one line the result carries.
func TestReason(t *testing.T) {
	for _, tc := range []struct {
		log  string // testdata/errors/NAME.log
		want string
	}{
		{"borg-wrong-passphrase", "wrong passphrase: passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND or via BORG_PASSPHRASE_FD is incorrect."},
		{"borg-ssh-refused", "target unreachable: ssh: connect to host 127.0.0.1 port 1: Connection refused"},
		{"borg-ssh-key-rejected", "ssh login refused: root@127.0.0.1: Permission denied (publickey)."},
		{"borg-full", "target full: OSError: [Errno 28] No space left on device"},
		{"restic-wrong-password", "wrong passphrase: wrong password or no key found"},
		{"restic-sftp-refused", "target unreachable: ssh: connect to host 127.0.0.1 port 1: Connection refused"},
		{"restic-sftp-key-rejected", "ssh connection to the target failed (login refused, host key, or no sftp/borg there: see the job log): unable to open repository at sftp:127.0.0.1:/tmp/h3cap/x: unable to start the sftp session, error: read |0: file already closed"},
		{"restic-s3-refused", `target unreachable: unable to open config file: Stat: Get "http://127.0.0.1:1/bucket/?location=": dial tcp 127.0.0.1:1: connect: connection refused`},
		{"restic-full", "target full: unable to save snapshot: write rfull/repo/data/be/befd0a88650bba6ceb8144bee3da044b32f056cc3a892090ec1a14da6a06782b-tmp-3709305028: no space left on device"},
		// versitygw v1.8.0 (checks S3 signatures) with a wrong secret key,
		// and with an unknown access key: restic then reads "no such key"
		// and tries init, which the server refuses.
		{"restic-s3-wrong-secret", "s3 credentials refused: unable to open config file: Stat: Access Denied."},
		{"restic-s3-wrong-access-key-init", "s3 credentials refused: create repository at s3:http://127.0.0.1:47070/backups/x failed: client.MakeBucket: No user exists with the provided access key ID."},
		{"duplicity-full", "target full: Giving up after 3 attempts. OSError: No space left on device"},
		{"duplicity-wrong-passphrase", "wrong passphrase: gpg: decryption failed: Bad session key"},
		{"duplicity-ftp-login-refused", "ftp login refused: mkdir: Login failed: 530 Authentication failed."},
		{"borg-corrupt-list", "repository data damaged: borg.helpers.errors.IntegrityError: Data integrity error: Segment entry checksum mismatch [segment 10, offset 8]"},
		{"restic-corrupt-restore", "repository data damaged: ignoring error for /rc/src/big.bin: ciphertext verification failed"},
		{"duplicity-sftp-key-rejected", "ssh login refused: BackendException: ssh connection to root@127.0.0.1:42222 failed: Authentication failed."},
	} {
		t.Run(tc.log, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "errors", tc.log+".log"))
			if err != nil {
				t.Fatal(err)
			}
			got := reasonOf(string(data))
			if got != tc.want {
				t.Errorf("reason\n got: %s\nwant: %s", got, tc.want)
			}
			if strings.Contains(got, "\n") || len(got) > maxReason {
				t.Errorf("reason is not one short line: %q", got)
			}
		})
	}
}

// reasonOf feeds a captured stderr through the backend's own consumers:
// borg's JSON log lines through ParseBorgLine, the others' lines through
// runTool's tail.
func reasonOf(stderr string) string {
	var borgMsgs []string
	tail := &lineTail{max: 12}
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "{") {
			if _, prog, msg, _ := ParseBorgLine(l); !prog && msg != "" {
				borgMsgs = append(borgMsgs, msg)
			}
			continue
		}
		tail.add(l)
	}
	if borgMsgs != nil {
		return Reason(borgMsgs)
	}
	return tail.String()
}

func TestReasonTraceback(t *testing.T) {
	tail := &lineTail{max: 12}
	for _, l := range strings.Split(`Traceback (most recent call last):
  File "/usr/bin/duplicity", line 1, in <module>
    raise x("connection timed out")
  File "/usr/lib/python3/dist-packages/duplicity/backend.py", line 2, in f
    self.f()
duplicity.errors.BackendException: Error running 'ls': 550 No such file
`, "\n") {
		tail.add(l)
	}
	if got, want := tail.String(), "duplicity.errors.BackendException: Error running 'ls': 550 No such file"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := Reason([]string{strings.Repeat("x", 1000)}); len(got) > maxReason {
		t.Errorf("reason of %d bytes", len(got))
	}
	if got := Reason(nil); got != "" {
		t.Errorf("Reason(nil) = %q", got)
	}
}

func TestBorgProgressMessageIsNoProblem(t *testing.T) {
	// borg 1.2.4 --log-json, as the appliance logged it before a failure.
	_, prog, msg, level := ParseBorgLine(`{"type": "progress_message", "operation": 1, "msgid": "cache.begin_transaction", "finished": false, "message": "Initializing cache transaction: Reading config", "time": 1795661290.9}`)
	if prog || msg != "Initializing cache transaction: Reading config" || level != "INFO" {
		t.Errorf("progress_message: prog %v, msg %q, level %q", prog, msg, level)
	}
}

func TestNoResticRepo(t *testing.T) {
	for _, tc := range []struct {
		log  string
		want bool
	}{
		{"restic-s3-refused", false},
		{"restic-sftp-refused", false},
		{"restic-wrong-password", false},
		{"restic-s3-wrong-secret", false},
		// An unknown access key reads as a missing config (versitygw);
		// the init that follows fails on the credentials and creates
		// nothing.
		{"restic-s3-wrong-access-key", true},
	} {
		data, err := os.ReadFile(filepath.Join("testdata", "errors", tc.log+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if got := NoResticRepo(string(data)); got != tc.want {
			t.Errorf("NoResticRepo(%s) = %v, want %v", tc.log, got, tc.want)
		}
	}
	if !NoResticRepo("Fatal: unable to open config file: stat /target/r/config: no such file or directory\n") {
		t.Error("a local repository without config is no repository")
	}
}
