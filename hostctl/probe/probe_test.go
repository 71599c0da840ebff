package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

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
	rs := Target(context.Background(), p, []string{"web"}, gw)
	require.Len(t, rs, 1)
	require.NoError(t, rs[0].Err)
	require.Contains(t, rs[0].Detail, "403")
	require.Equal(t, "HEAD /bucket", got)

	srv.Close()
	rs = Target(context.Background(), p, []string{"web"}, gw)
	require.Error(t, rs[0].Err, "nothing listens any more")
}

func TestProbeFTP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "220 test ftp\r\n")
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	p := &config.Profile{Backend: "duplicity", Target: "ftp://u@" + gw + ":" + port + "/b/{client}"}
	rs := Target(context.Background(), p, []string{"web"}, gw)
	require.Len(t, rs, 1)
	require.NoError(t, rs[0].Err)
	require.Equal(t, "220 test ftp", rs[0].Detail)
}

func TestProbeFileTarget(t *testing.T) {
	root := t.TempDir()
	p := &config.Profile{Backend: "borg", Target: "file://" + root + "/{client}"}
	rs := Target(context.Background(), p, []string{"a", "b"}, gw)
	require.Len(t, rs, 4, "writable and repository per client")
	for _, r := range rs {
		require.NoError(t, r.Err, r.Check)
	}
}

// ftps:// is implicit TLS: the probe connects, at the port the appliance's
// lftp uses, and expects no plain-text greeting.
func TestProbeFTPS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	p := &config.Profile{Backend: "duplicity", Target: "ftps://u@" + gw + ":" + port + "/b/{client}"}
	rs := Target(context.Background(), p, []string{"web"}, gw)
	require.Len(t, rs, 1)
	require.NoError(t, rs[0].Err)
	require.Equal(t, "127.0.0.1:"+port, rs[0].Item)
	l.Close()
	rs = Target(context.Background(), p, nil, gw)
	require.Error(t, rs[0].Err, "nothing listens any more")
}
