package report

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"os"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

// WantMail says whether the run's report is mailed under cfg.
func WantMail(cfg config.Report, r *Run) bool {
	switch cfg.Email {
	case config.MailAlways:
		return true
	case config.MailFailure:
		// A backup with warnings is news too: files are missing from it.
		return r.Status() != "ok"
	}
	return false
}

// Message renders the mail: plain text, UTF-8, headers in a fixed order.
func Message(from string, to []string, subject, body string, date time.Time, id string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(to, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s>\r\n", id)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	// net/smtp's DATA writer does the dot-stuffing.
	for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		b.WriteString(line + "\r\n")
	}
	return b.Bytes()
}

// Mail sends r's report through cfg.SMTP.
func Mail(ctx context.Context, cfg config.Report, r *Run) error {
	from := cfg.From
	if from == "" {
		from = "hostctl@" + r.Host
	}
	msg := Message(from, cfg.To, Subject(r), Text(r), time.Now(), fmt.Sprintf("hostctl-%s@%s", r.ID, r.Host))
	return send(ctx, cfg.SMTP, from, cfg.To, msg)
}

// send delivers msg: STARTTLS unless switched off, AUTH PLAIN when a
// password file is set (net/smtp refuses it without TLS except to localhost).
func send(ctx context.Context, s config.SMTP, from string, to []string, msg []byte) error {
	addr := net.JoinHostPort(s.Host, fmt.Sprint(s.Port))
	d := net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	// One deadline for the whole conversation: a stuck relay must not hang the run.
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer c.Close()
	host, _ := os.Hostname()
	if host != "" {
		if err := c.Hello(host); err != nil {
			return fmt.Errorf("smtp %s: HELO: %w", addr, err)
		}
	}
	if s.UseStartTLS() {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp %s: the server does not offer STARTTLS (set report.smtp.starttls = false to send in clear)", addr)
		}
		if err := c.StartTLS(&tls.Config{ServerName: s.Host}); err != nil {
			return fmt.Errorf("smtp %s: STARTTLS: %w", addr, err)
		}
	}
	if s.PasswordFile != "" {
		pw, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return fmt.Errorf("smtp password: %w", err)
		}
		if err := c.Auth(smtp.PlainAuth("", s.Username, strings.TrimRight(string(pw), "\r\n"), s.Host)); err != nil {
			return fmt.Errorf("smtp %s: AUTH: %w", addr, err)
		}
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM: %w", addr, err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return fmt.Errorf("smtp %s: RCPT TO %s: %w", addr, rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", addr, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", addr, err)
	}
	if err := c.Quit(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("smtp %s: QUIT: %w", addr, err)
	}
	return nil
}
