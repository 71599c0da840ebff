package virt

import (
	"context"
	"fmt"
	"io"

	"libvirt.org/go/libvirt"
)

// Console opens a domain's serial console as a byte stream. Reads end with
// io.EOF when the domain goes away.
func (l *Libvirt) Console(ctx context.Context, name string) (io.ReadWriteCloser, error) {
	d, err := l.lookup(name)
	if err != nil {
		return nil, err
	}
	defer d.Free()
	st, err := l.conn.NewStream(0)
	if err != nil {
		return nil, fmt.Errorf("console of %s: %w", name, err)
	}
	if err := d.OpenConsole("", st, libvirt.DOMAIN_CONSOLE_FORCE); err != nil {
		st.Free()
		return nil, fmt.Errorf("console of %s: %w", name, err)
	}
	return &consoleStream{st: st}, nil
}

// consoleStream adapts a blocking libvirt stream to io.ReadWriteCloser.
type consoleStream struct{ st *libvirt.Stream }

func (c *consoleStream) Read(p []byte) (int, error) {
	n, err := c.st.Recv(p)
	if n < 0 { // "would block" and "hole" do not occur on a blocking stream
		return 0, nil
	}
	return n, err
}

func (c *consoleStream) Write(p []byte) (int, error) {
	total := 0
	for total < len(p) {
		n, err := c.st.Send(p[total:])
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

func (c *consoleStream) Close() error {
	_ = c.st.Abort()
	return c.st.Free()
}
