package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// targetsOf is p's target for each of clients as config resolves it; for
// none, the profile's target for no client (under "").
func targetsOf(t *testing.T, p *config.Profile, clients ...string) map[string]target.Target {
	t.Helper()
	out := map[string]target.Target{}
	if len(clients) == 0 {
		tg, err := target.Parse(strings.ReplaceAll(p.Target, config.ClientPlaceholder, "client"))
		require.NoError(t, err)
		return map[string]target.Target{"": tg}
	}
	for _, c := range clients {
		tg, err := target.Parse(strings.ReplaceAll(p.Target, config.ClientPlaceholder, c))
		require.NoError(t, err)
		out[c] = tg
	}
	return out
}

// The appliance's gateway is this host: probes of a target there go to
// 127.0.0.1, as the servers below listen.
const gw = "10.0.2.2"

func TestProbeS3(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Method + " " + r.URL.Path
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p := &config.Profile{Backend: "restic", Target: "s3://bucket/{client}",
		S3: config.S3{Endpoint: "http://" + gw + ":" + port, PathStyle: true}}
	rs := Target(context.Background(), p, targetsOf(t, p, "web"), gw)
	require.Len(t, rs, 1)
	require.NoError(t, rs[0].Err)
	require.Contains(t, rs[0].Detail, "403")
	require.Equal(t, "HEAD /bucket", got)

	srv.Close()
	rs = Target(context.Background(), p, targetsOf(t, p, "web"), gw)
	require.Error(t, rs[0].Err, "nothing listens any more")
}

// tcpServer listens on 127.0.0.1 and hands every connection to greet
// before closing it; the listener is closed with the test (or earlier, by
// the test).
func tcpServer(t *testing.T, greet func(net.Conn)) (net.Listener, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			greet(c)
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return l, port
}

func TestProbeFTP(t *testing.T) {
	_, port := tcpServer(t, func(c net.Conn) { fmt.Fprintf(c, "220 test ftp\r\n") })
	p := &config.Profile{Backend: "duplicity", Target: "ftp://u@" + gw + ":" + port + "/b/{client}"}
	rs := Target(context.Background(), p, targetsOf(t, p, "web"), gw)
	require.Len(t, rs, 1)
	require.NoError(t, rs[0].Err)
	require.Equal(t, "220 test ftp", rs[0].Detail)
}

func TestProbeFileTarget(t *testing.T) {
	root := t.TempDir()
	p := &config.Profile{Backend: "borg", Target: "file://" + root + "/{client}"}
	rs := Target(context.Background(), p, targetsOf(t, p, "a", "b"), gw)
	require.Len(t, rs, 4, "writable and repository per client")
	for _, r := range rs {
		require.NoError(t, r.Err, r.Check)
	}
}

// ftps:// is implicit TLS: the probe connects, at the port the appliance's
// lftp uses, and expects no plain-text greeting.
func TestProbeFTPS(t *testing.T) {
	l, port := tcpServer(t, func(net.Conn) {})
	p := &config.Profile{Backend: "duplicity", Target: "ftps://u@" + gw + ":" + port + "/b/{client}"}
	rs := Target(context.Background(), p, targetsOf(t, p, "web"), gw)
	require.Len(t, rs, 1)
	require.NoError(t, rs[0].Err)
	require.Equal(t, "127.0.0.1:"+port, rs[0].Item)
	l.Close()
	rs = Target(context.Background(), p, targetsOf(t, p), gw)
	require.Error(t, rs[0].Err, "nothing listens any more")
}
