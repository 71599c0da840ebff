// Package smtptest is an SMTP sink on 127.0.0.1 for tests (like httptest):
// it accepts every message, without TLS or auth, and hands it over on a
// channel.
package smtptest

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync"
)

// Mail is one received message.
type Mail struct {
	From string
	To   []string
	Data string // headers and body, CRLF line ends, dot-stuffing undone
	Auth string // AUTH PLAIN credentials as "user:password", "" without
}

// Server is a running sink.
type Server struct {
	Addr  string // host:port
	Host  string
	Port  int
	Mails chan Mail
	ln    net.Listener
	wg    sync.WaitGroup
}

// Start listens on a free port of 127.0.0.1.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := ln.Addr().(*net.TCPAddr)
	s := &Server{Addr: a.String(), Host: "127.0.0.1", Port: a.Port, Mails: make(chan Mail, 16), ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	return s, nil
}

// Close stops the sink.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func(f string, a ...any) { fmt.Fprintf(c, f+"\r\n", a...) }
	reply("220 smtptest ready")
	var m Mail
	auth := ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			reply("250-smtptest\r\n250-AUTH PLAIN\r\n250 8BITMIME")
		case strings.HasPrefix(cmd, "HELO"):
			reply("250 smtptest")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			m = Mail{From: addr(line), Auth: auth}
			reply("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			m.To = append(m.To, addr(line))
			reply("250 ok")
		case cmd == "DATA":
			reply("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			m.Data = b.String()
			s.Mails <- m
			reply("250 queued")
		case strings.HasPrefix(cmd, "AUTH PLAIN "):
			f := strings.Fields(line)
			if dec, err := base64.StdEncoding.DecodeString(f[len(f)-1]); err == nil {
				parts := strings.Split(string(dec), "\x00")
				if len(parts) == 3 {
					auth = parts[1] + ":" + parts[2]
				}
			}
			reply("235 ok")
		case cmd == "RSET" || cmd == "NOOP":
			reply("250 ok")
		case cmd == "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

func addr(line string) string {
	_, a, _ := strings.Cut(line, ":")
	a = strings.TrimSpace(a)
	if i := strings.IndexByte(a, ' '); i >= 0 {
		a = a[:i]
	}
	return strings.Trim(a, "<>")
}
