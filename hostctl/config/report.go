package config

import (
	"net/mail"
	"path"
	"slices"
)

// When the report is mailed.
const (
	MailNever   = "never"
	MailFailure = "failure" // a job failed, ended with warnings or was skipped
	MailAlways  = "always"
)

// Defaults of [report].
const (
	DefaultSMTPPort = 587
	DefaultKeepRuns = 60
)

var mailWhens = []string{MailNever, MailFailure, MailAlways}

// Report says where each run's report goes besides the exit code:
// <state_dir>/reports/ (always, `hostctl status` reads it), email, the
// journal and a Prometheus textfile.
type Report struct {
	// Email: "never" (default without to), "failure" (default with to: a
	// job failed, ended with warnings or was skipped) or "always".
	Email string   `toml:"email"`
	To    []string `toml:"to"`   // recipients; setting it turns mail on
	From  string   `toml:"from"` // default hostctl@<hostname>
	SMTP  SMTP     `toml:"smtp"`
	// MetricsFile is node_exporter's textfile collector file, e.g.
	// /var/lib/prometheus/node-exporter/hostctl.prom; "" writes none.
	MetricsFile string `toml:"metrics_file"`
	// Journal sends one structured entry per job when journald runs:
	// true (default) or false.
	Journal *bool `toml:"journal"`
	// KeepRuns is how many run reports the state dir keeps (default 60).
	KeepRuns int `toml:"keep_runs"`
}

// SMTP is the mail relay.
type SMTP struct {
	Host     string `toml:"host"`     // required for email
	Port     int    `toml:"port"`     // default 587
	StartTLS *bool  `toml:"starttls"` // require STARTTLS; default true
	// Username for SMTP AUTH PLAIN (only over TLS, or to localhost).
	Username string `toml:"username"`
	// PasswordFile holds the SMTP password (mode 0600).
	PasswordFile string `toml:"password_file"`
}

// UseStartTLS says whether STARTTLS is required (default true).
func (s SMTP) UseStartTLS() bool { return s.StartTLS == nil || *s.StartTLS }

// JournalOn says whether journal entries are wanted.
func (r Report) JournalOn() bool { return r.Journal == nil || *r.Journal }

func (c *Config) reportDefaults() {
	r := &c.Host.Report
	if r.Email == "" {
		r.Email = MailNever
		if len(r.To) > 0 {
			r.Email = MailFailure
		}
	}
	if r.SMTP.Port == 0 {
		r.SMTP.Port = DefaultSMTPPort
	}
	if r.KeepRuns == 0 {
		r.KeepRuns = DefaultKeepRuns
	}
	if r.SMTP.PasswordFile != "" {
		r.SMTP.PasswordFile = c.resolve(r.SMTP.PasswordFile)
	}
}

func (v *validator) report() {
	r, f := &v.c.Host.Report, v.c.Path
	if r.Email != "" && !slices.Contains(mailWhens, r.Email) {
		v.at(f, "report.email", "unknown value %q: want one of %s", r.Email, quoted(mailWhens))
	}
	if r.Email != "" && r.Email != MailNever {
		if len(r.To) == 0 {
			v.at(f, "report.to", "missing: email = %q needs at least one address", r.Email)
		}
		if r.SMTP.Host == "" {
			v.at(f, "report.smtp.host", "missing: email = %q needs the mail relay", r.Email)
		}
	}
	for _, a := range r.To {
		if _, err := mail.ParseAddress(a); err != nil {
			v.at(f, "report.to", "%q is not a mail address", a)
		}
	}
	if r.From != "" {
		if _, err := mail.ParseAddress(r.From); err != nil {
			v.at(f, "report.from", "%q is not a mail address", r.From)
		}
	}
	if r.SMTP.Port < 0 || r.SMTP.Port > 65535 {
		v.at(f, "report.smtp.port", "%d is not a port", r.SMTP.Port)
	}
	if (r.SMTP.Username == "") != (r.SMTP.PasswordFile == "") {
		v.at(f, "report.smtp.username", "username and password_file go together")
	}
	if r.SMTP.PasswordFile != "" {
		if err := checkSecretFile(r.SMTP.PasswordFile); err != nil {
			v.at(f, "report.smtp.password_file", "%v", err)
		}
	}
	if r.MetricsFile != "" && !path.IsAbs(r.MetricsFile) {
		v.at(f, "report.metrics_file", "%q is not an absolute path", r.MetricsFile)
	}
	if r.KeepRuns < 0 {
		v.at(f, "report.keep_runs", "%d: want at least 1", r.KeepRuns)
	}
	if v.c.Host.RunTimeLimit.Duration < 0 {
		v.at(f, "run_time_limit", "%s: want a duration > 0 (or leave it out: no limit)", v.c.Host.RunTimeLimit.Duration)
	}
}
