package cli

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/snapshot-backup/snapshot-backup/hostctl/progress"
)

// progressOptions is the --progress flag of the commands that boot
// appliances: run, restore, verify, list, recover.
type progressOptions struct {
	Progress string
}

func (o *progressOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Progress, "progress", "", `the appliance's progress: text, json or none (default: text when stderr is a terminal, else none)`)
}

// progressHelp is the --help text on --progress.
const progressHelp = `Progress (--progress text|json|none; default: text when stderr is a
terminal, else none): text shows the appliance's steps and its backend's
progress on stderr, as one redrawn status line on a terminal and as a line
every 5s elsewhere (the journal: install-timer's unit passes --progress
text). json is for other programs: one JSON object a line,
{"client": …, "mode": …, "record": {…}}, the record as in the job's
progress.jsonl (its text from the appliance, escaped; backend progress at
most once a second). The lines go to stdout, and what the command prints
there otherwise (its table) goes to stderr; with --json, stdout keeps the
result and the lines go to stderr. A reader that stalls holds up no job: past
1 MiB waiting, lines are dropped (and counted on stderr at the end).`

// streams picks the progress form and the streams the command prints on:
// g itself, or with --progress json on stdout a copy of g whose Stdout is
// stderr, so that stdout carries JSON lines only. asJSON: the command's
// result is JSON on stdout (--json).
func (o progressOptions) streams(g *Globals, asJSON bool) (*Globals, progress.Sink, error) {
	switch o.Progress {
	case "":
		if isTerminal(g.Stderr) {
			return g, progress.NewText(g.Stderr, true), nil
		}
		return g, progress.None, nil
	case "text":
		return g, progress.NewText(g.Stderr, isTerminal(g.Stderr)), nil
	case "none":
		return g, progress.None, nil
	case "json":
		if asJSON {
			return g, progress.NewJSON(g.Stderr), nil
		}
		out := *g
		out.Stdout = g.Stderr
		return &out, progress.NewJSON(g.Stdout), nil
	}
	return nil, nil, &UsageError{fmt.Errorf("--progress %q: want text, json or none", o.Progress)}
}
