package qemutests

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/internal/testutil"
)

// The appliance reaches the host's 127.0.0.1 as 10.0.2.2 (libvirt
// user-mode networking), so every test server listens on 127.0.0.1 only.
const guestHost = "10.0.2.2"

// sshServer is a dedicated sshd on 127.0.0.1 with its own config, host key
// and authorized key, started and stopped by the test.
type sshServer struct {
	port       int
	identity   string // the client's private key (for the profile)
	knownHosts string // the pinned host key, as the appliance sees the host
	hostKey    string // "TYPE BASE64" of the server's public host key
	root       string // directory the sftp targets live in
}

func startSSHD(t *testing.T) *sshServer {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		testutil.SkipOrFail(t, "openssh-server is not installed: run qemu-tests/setup-host.sh")
	}
	dir := t.TempDir()
	s := &sshServer{port: freePort(t), root: filepath.Join(dir, "srv")}
	require.NoError(t, os.MkdirAll(s.root, 0o700))
	hostKey := filepath.Join(dir, "host_key")
	s.identity = filepath.Join(dir, "id_ed25519")
	for _, k := range []string{hostKey, s.identity} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	pub, err := os.ReadFile(s.identity + ".pub")
	require.NoError(t, err)
	auth := filepath.Join(dir, "authorized_keys")
	require.NoError(t, os.WriteFile(auth, pub, 0o600))
	hostPub, err := os.ReadFile(hostKey + ".pub")
	require.NoError(t, err)
	f := strings.Fields(string(hostPub))
	s.hostKey = f[0] + " " + f[1]
	s.knownHosts = filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(s.knownHosts, []byte(fmt.Sprintf("[%s]:%d %s %s\n", guestHost, s.port, f[0], f[1])), 0o600))
	runSSHD(t, dir, s.port, fmt.Sprintf(`HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
`, hostKey, auth))
	return s
}

// runSSHD runs /usr/sbin/sshd on 127.0.0.1:port with config (ListenAddress
// and PidFile are added) until the test ends, its log in dir.
func runSSHD(t *testing.T, dir string, port int, config string) {
	t.Helper()
	cfg := filepath.Join(dir, "sshd_config")
	config = fmt.Sprintf("ListenAddress 127.0.0.1:%d\nPidFile %s\n", port, filepath.Join(dir, "sshd.pid")) + config
	require.NoError(t, os.WriteFile(cfg, []byte(config), 0o600))
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log, _ := os.ReadFile(logf.Name())
		t.Logf("sshd log:\n%s", log)
	})
	waitListen(t, port)
}

// knownHostsAt writes a known_hosts file that pins the server's host key
// for host (as a client on this machine, not the appliance, reaches it).
func (s *sshServer) knownHostsAt(t *testing.T, host string) string {
	p := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf("[%s]:%d %s\n", host, s.port, s.hostKey)), 0o600))
	return p
}

// socksProxy is a minimal SOCKS5 server (no auth, CONNECT only) on
// 127.0.0.1 that maps 10.0.2.2 back to 127.0.0.1 and counts connections:
// the stand-in for a tor daemon behind a ProxyCommand.
type socksProxy struct {
	port  int
	conns atomic.Int64
}

func startSOCKS(t *testing.T) *socksProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &socksProxy{port: ln.Addr().(*net.TCPAddr).Port}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *socksProxy) serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 262)
	if _, err := io.ReadFull(c, buf[:2]); err != nil || buf[0] != 5 {
		return
	}
	if _, err := io.ReadFull(c, buf[:buf[1]]); err != nil {
		return
	}
	c.Write([]byte{5, 0})
	if _, err := io.ReadFull(c, buf[:4]); err != nil || buf[1] != 1 {
		return
	}
	var host string
	switch buf[3] {
	case 1:
		io.ReadFull(c, buf[:4])
		host = net.IP(buf[:4]).String()
	case 3:
		io.ReadFull(c, buf[:1])
		n := int(buf[0])
		io.ReadFull(c, buf[:n])
		host = string(buf[:n])
	default:
		return
	}
	io.ReadFull(c, buf[:2])
	port := binary.BigEndian.Uint16(buf[:2])
	if host == guestHost {
		host = "127.0.0.1" // only ever loopback
	}
	if host != "127.0.0.1" {
		c.Write([]byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	up, err := net.DialTimeout("tcp", net.JoinHostPort(host, fmt.Sprint(port)), 5*time.Second)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	p.conns.Add(1)
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	go io.Copy(up, c)
	io.Copy(c, up)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitListen(t *testing.T, port int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing listens on 127.0.0.1:%d", port)
}
