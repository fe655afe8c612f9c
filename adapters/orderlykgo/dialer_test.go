package orderlykgo_test

import (
	"context"
	"errors"
	"net"
	"sync"
)

// vanishingDialer dials a member's connections (DialContext fits
// kgo.Dialer); Vanish closes every connection it made and fails every
// later dial, so the member can reach no broker again and sends nothing
// more: a process that was killed. Safe for concurrent use.
type vanishingDialer struct {
	mu     sync.Mutex
	conns  []net.Conn
	gone   bool
	dialer net.Dialer
}

// errVanished is what a vanished member's dials fail with.
var errVanished = errors.New("this member has vanished")

// DialContext dials addr unless the member has vanished.
func (d *vanishingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	gone := d.gone
	d.mu.Unlock()
	if gone {
		return nil, errVanished
	}
	conn, err := d.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		_ = conn.Close()
		return nil, errVanished
	}
	d.conns = append(d.conns, conn)
	return conn, nil
}

// Vanish closes every connection and fails every later dial.
func (d *vanishingDialer) Vanish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gone = true
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = nil
}
