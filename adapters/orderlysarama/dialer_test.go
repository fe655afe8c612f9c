package orderlysarama_test

import (
	"errors"
	"net"
	"sync"

	"github.com/IBM/sarama"
)

// faultDialer dials a member's connections to the cluster (it is sarama's
// Net.Proxy.Dialer, see use) and puts faults on them on demand:
//
//   - Hold keeps every connection open and lets no byte through either
//     way: requests are sent and never answered, as from a broker that
//     stops answering. What the member writes meanwhile is kept, and sent
//     on Restore; what the brokers answer is delivered on Restore.
//   - Vanish closes every connection and fails every later dial, as when
//     the member's process is killed: it sends nothing more.
//
// Its methods are safe for concurrent use.
type faultDialer struct {
	mu      sync.Mutex
	conns   []*faultConn
	gone    bool
	flowing chan struct{} // closed while bytes flow; an open one while held
	dialer  net.Dialer
}

// errVanished is what a vanished member's dials fail with.
var errVanished = errors.New("this member has vanished")

func newFaultDialer() *faultDialer {
	flowing := make(chan struct{})
	close(flowing)
	return &faultDialer{flowing: flowing}
}

// use makes cfg's clients dial through d.
func (d *faultDialer) use(cfg *sarama.Config) *sarama.Config {
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = d
	return cfg
}

// Dial dials addr unless the member has vanished.
func (d *faultDialer) Dial(network, addr string) (net.Conn, error) {
	if d.vanished() {
		return nil, errVanished
	}
	conn, err := d.dialer.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	c := &faultConn{Conn: conn, d: d, closed: make(chan struct{})}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		_ = conn.Close()
		return nil, errVanished
	}
	d.conns = append(d.conns, c)
	return c, nil
}

func (d *faultDialer) vanished() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gone
}

// Hold stops the bytes of every connection, open or dialled later, until
// Restore.
func (d *faultDialer) Hold() {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.flowing:
		d.flowing = make(chan struct{})
	default: // already held
	}
}

// Restore sends what was written while held, and lets bytes flow again.
func (d *faultDialer) Restore() {
	d.mu.Lock()
	conns := append([]*faultConn(nil), d.conns...)
	select {
	case <-d.flowing:
	default:
		close(d.flowing)
	}
	d.mu.Unlock()
	// What was kept goes first: a write sends what its connection kept
	// before its own bytes, under the connection's write lock.
	for _, c := range conns {
		c.flush()
	}
}

// Vanish closes every connection and fails every later dial.
func (d *faultDialer) Vanish() {
	d.mu.Lock()
	d.gone = true
	conns := d.conns
	d.conns = nil
	d.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// flow returns the channel that is closed while bytes flow.
func (d *faultDialer) flow() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flowing
}

// faultConn is one connection of a faultDialer.
type faultConn struct {
	net.Conn
	d *faultDialer

	// wmu serialises writes and guards kept: what was written while held.
	wmu  sync.Mutex
	kept []byte

	closed    chan struct{}
	closeOnce sync.Once
}

// Read delivers what the broker sent only while bytes flow.
func (c *faultConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	select {
	case <-c.d.flow():
	case <-c.closed:
		return 0, net.ErrClosed
	}
	return n, err
}

// Write sends p, or keeps it while held: the caller is not blocked (a
// broker that stops answering still takes requests off the wire).
func (c *faultConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.d.flow():
	default:
		c.kept = append(c.kept, p...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *faultConn) flush() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.flushLocked()
}

func (c *faultConn) flushLocked() error {
	if len(c.kept) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.kept)
	c.kept = nil
	return err
}

func (c *faultConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
