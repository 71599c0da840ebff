package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/progress"
	"github.com/snapshot-backup/snapshot-backup/hostctl/runner"
	"github.com/snapshot-backup/snapshot-backup/internal/job"
)

// records is what an appliance sends during a short backup.
var records = []job.Record{
	job.Step{Name: "mount snapshot"}.Record(),
	job.Step{Name: "mount snapshot", Elapsed: time.Second}.Record(),
	job.Progress{Bytes: 1 << 20, Files: 2, Path: "etc/passwd"}.Record(),
	job.Done{Status: job.StatusOK, Archive: "a-1"}.Record(),
}

// Where --progress sends the appliance's records and the command's own
// output, for every value, with and without --json, on a terminal or not.
func TestProgressStreams(t *testing.T) {
	_, tty := openPTY(t)
	for _, tc := range []struct {
		flag           string
		asJSON, onTTY  bool
		want           string // "", "text", "bar", "json"
		progressStderr bool   // else on stdout
		resultStderr   bool   // the command's table goes to stderr
	}{
		{flag: "", onTTY: false, want: ""},
		{flag: "", onTTY: true, want: "bar", progressStderr: true},
		{flag: "text", want: "text", progressStderr: true},
		{flag: "text", onTTY: true, want: "bar", progressStderr: true},
		{flag: "none", onTTY: true, want: ""},
		{flag: "json", want: "json", resultStderr: true},
		{flag: "json", onTTY: true, want: "json", resultStderr: true},
		{flag: "json", asJSON: true, want: "json", progressStderr: true},
	} {
		var out bytes.Buffer
		var errw io.Writer = &bytes.Buffer{}
		if tc.onTTY {
			errw = tty
		}
		g := &Globals{Stdout: &out, Stderr: errw}
		rg, sink, err := progressOptions{Progress: tc.flag}.streams(g, tc.asJSON)
		require.NoError(t, err, tc.flag)
		if tc.resultStderr {
			require.Same(t, errw, rg.Stdout, "%+v: the table goes to stderr", tc)
		} else {
			require.Same(t, g, rg, "%+v", tc)
		}
		switch p := sink.(type) {
		case *progress.Text:
			require.Equal(t, tc.want == "bar", tc.onTTY, "%+v", tc)
			require.Contains(t, []string{"text", "bar"}, tc.want, "%+v", tc)
		case *progress.JSON:
			require.Equal(t, "json", tc.want, "%+v", tc)
		default:
			require.Equal(t, progress.None, p, "%+v", tc)
			require.Empty(t, tc.want, "%+v", tc)
		}
		if tc.onTTY {
			continue // what reaches the terminal is not read back here
		}
		sink.Begin("a", job.ModeBackup)
		for _, r := range records {
			sink.Record("a", r)
		}
		require.Zero(t, progress.Close(sink), "%+v", tc)
		got := errw.(*bytes.Buffer).String()
		if !tc.progressStderr {
			got = out.String()
			require.Empty(t, errw.(*bytes.Buffer).String(), "%+v", tc)
		} else {
			require.Empty(t, out.String(), "%+v", tc)
		}
		switch tc.want {
		case "":
			require.Empty(t, got, "%+v: --progress none prints nothing", tc)
		case "text":
			require.Equal(t, "a: mount snapshot…\na: mount snapshot done (1s)\na: 1.0 MiB, 2 files, etc/passwd\na: appliance done: ok\n", got)
		case "json":
			require.Len(t, strings.Split(strings.TrimSuffix(got, "\n"), "\n"), len(records))
		}
	}
	_, _, err := progressOptions{Progress: "bar"}.streams(&Globals{}, false)
	var ue *UsageError
	require.ErrorAs(t, err, &ue)
}

// hostctl run --progress json: stdout is JSON lines, one a record, the
// summary table on stderr. (The appliance's records here are fed to the
// sink the run would get; qemu-tests' TestBackupAndRestore has a real one.)
func TestRunProgressJSONLines(t *testing.T) {
	path, _ := testConfig(t)
	var out, errb bytes.Buffer
	g, sink, err := progressOptions{Progress: "json"}.streams(&Globals{ConfigPath: path, Stdout: &out, Stderr: &errb}, false)
	require.NoError(t, err)
	cfg, err := g.LoadConfig()
	require.NoError(t, err)
	sink.Begin("web", job.ModeBackup)
	for _, r := range records {
		sink.Record("web", r)
	}
	require.NoError(t, reportRun(context.Background(), g, cfg, "20261201T033000Z", time.Now(), []*runner.Report{{Client: "web", Status: runner.StatusOK, Archive: "a-1"}}, false))
	require.Zero(t, progress.Close(sink))
	sc := bufio.NewScanner(&out)
	n := 0
	for sc.Scan() {
		var l progress.Line
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "stdout line %q", sc.Text())
		require.Equal(t, "web", l.Client)
		require.Equal(t, job.ModeBackup, l.Mode)
		require.Equal(t, records[n].Type, l.Record.Type)
		n++
	}
	require.Equal(t, len(records), n)
	require.Regexp(t, `(?m)^CLIENT\s+STATUS`, errb.String(), "the table on stderr")
	require.Contains(t, errb.String(), "a-1")
}

// The flag through Main: a bad value is a usage error before anything
// runs; with json, a run that fails before its jobs keeps stdout free of
// its table.
func TestRunProgressFlag(t *testing.T) {
	h := newRunHost(t, "")
	code, _, stderr := runMain(t, "run", "--progress", "bar", "--config", h.config)
	require.Equal(t, ExitUsage, code)
	require.Contains(t, stderr, `--progress "bar": want text, json or none`)
	_, err := os.Stat(h.stateDir)
	require.ErrorIs(t, err, os.ErrNotExist, "nothing ran")

	code, out, stderr := runMain(t, "run", "--progress", "json", "--config", h.config)
	require.Equal(t, ExitFailed, code, stderr)
	require.Empty(t, out, "no appliance ran: no line, and the table is not on stdout")
	require.Regexp(t, `(?m)^CLIENT\s+STATUS`, stderr)
	require.Contains(t, stderr, "not started: appliance image incomplete")

	code, out, _ = runMain(t, "run", "--progress", "json", "--json", "--config", h.config)
	require.Equal(t, ExitFailed, code)
	var reps []runner.Report
	require.NoError(t, json.Unmarshal([]byte(out), &reps), "with --json stdout is the result")
	require.Len(t, reps, 2)
}

// Every command that boots an appliance documents --progress: its forms,
// its default and where the JSON lines go.
func TestProgressHelp(t *testing.T) {
	for _, cmd := range []string{"run", "restore", "verify", "list", "recover"} {
		code, out, _ := runMain(t, cmd, "--help")
		require.Equal(t, 0, code)
		for _, want := range []string{
			"--progress string", "Progress (--progress text|json|none; default: text when stderr is a\nterminal, else none)",
			`{"client": …, "mode": …, "record": {…}}`, "The lines go to stdout", "with --json, stdout keeps the\nresult and the lines go to stderr",
		} {
			require.Contains(t, out, want, cmd)
		}
	}
	_, out, _ := runMain(t, "rescue", "--help")
	require.NotContains(t, out, "--progress", "rescue's terminal is the console")
}
