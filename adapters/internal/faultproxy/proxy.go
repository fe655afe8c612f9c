package faultproxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// State is what the proxy does with connections.
type State int

const (
	// Forwarding passes bytes both ways: the normal state.
	Forwarding State = iota
	// Cutting closes every connection and closes each new one as soon as
	// it is accepted: the brokers are unreachable.
	Cutting
	// Holding keeps connections open and accepts new ones, but forwards
	// nothing either way: requests are never answered. What was read
	// while holding is forwarded on Restore.
	Holding
)

func (s State) String() string {
	switch s {
	case Forwarding:
		return "forwarding"
	case Cutting:
		return "cutting"
	case Holding:
		return "holding"
	}
	return "unknown"
}

// Proxy forwards TCP connections from clients to brokers, with faults on
// demand. Its methods are safe for concurrent use and do not block
// (except Close, which waits for nothing but closes everything).
type Proxy struct {
	// mu guards everything below. It is never held while doing I/O.
	mu        sync.Mutex
	state     State
	changed   chan struct{} // closed and replaced on every state change
	conns     map[*link]struct{}
	listeners []*listener
	closed    bool

	refused atomic.Int64 // connections closed on accept while cutting
	cut     atomic.Int64 // connections closed by Cut
}

// New returns a Proxy in the Forwarding state, with no brokers yet.
func New() *Proxy {
	return &Proxy{changed: make(chan struct{}), conns: make(map[*link]struct{})}
}

// Listen has kfake.ListenFn's signature. It opens the broker's own
// listener on a free loopback port and the proxy's front listener on
// address, and returns the broker's listener reporting the front's
// address as its own: kfake accepts from the former and advertises the
// latter. Closing the returned listener closes both.
func (p *Proxy) Listen(network, address string) (net.Listener, error) {
	back, err := net.Listen(network, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	front, err := net.Listen(network, address)
	if err != nil {
		_ = back.Close()
		return nil, err
	}
	l := &listener{Listener: back, front: front}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = l.Close()
		return nil, net.ErrClosed
	}
	p.listeners = append(p.listeners, l)
	p.mu.Unlock()
	// Owned by the listener: it ends when front is closed.
	go p.accept(front, back.Addr().String())
	return l, nil
}

// Cut closes every connection and, until Restore or Hold, closes each new
// connection as soon as it is accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.setLocked(Cutting)
	links := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close()
		p.cut.Add(1)
	}
}

// Hold stops forwarding, both ways, on every connection, existing and new,
// until Restore or Cut; connections stay open.
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLocked(Holding)
}

// Restore forwards again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLocked(Forwarding)
}

// State returns the current state.
func (p *Proxy) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Refused is the number of connections closed on accept while cutting:
// how often clients tried to reach a broker during an outage.
func (p *Proxy) Refused() int64 { return p.refused.Load() }

// Close closes every listener and connection; the proxy forwards nothing
// afterwards. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	listeners := p.listeners
	p.listeners = nil
	links := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range listeners {
		_ = l.Close()
	}
	for _, l := range links {
		l.close()
	}
	return nil
}

func (p *Proxy) setLocked(s State) {
	if p.state == s {
		return
	}
	p.state = s
	close(p.changed)
	p.changed = make(chan struct{})
}

// gate returns the state and a channel closed at the next change.
func (p *Proxy) gate() (State, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, p.changed
}

func (p *Proxy) accept(front net.Listener, back string) {
	for {
		client, err := front.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed || p.state == Cutting {
			p.mu.Unlock()
			_ = client.Close()
			p.refused.Add(1)
			continue
		}
		p.mu.Unlock()
		broker, err := net.Dial("tcp", back)
		if err != nil {
			_ = client.Close()
			continue
		}
		l := newLink(client, broker)
		p.mu.Lock()
		if p.closed || p.state == Cutting {
			p.mu.Unlock()
			l.close()
			p.refused.Add(1)
			continue
		}
		p.conns[l] = struct{}{}
		p.mu.Unlock()
		var wg sync.WaitGroup
		wg.Add(2)
		// Owned by the link: each copies one way until either side
		// closes; the last one out forgets the link.
		go func() { defer wg.Done(); p.pipe(l, broker, client) }()
		go func() { defer wg.Done(); p.pipe(l, client, broker) }()
		go func() {
			wg.Wait()
			p.mu.Lock()
			delete(p.conns, l)
			p.mu.Unlock()
		}()
	}
}

// pipe copies from src to dst, each chunk waiting while the proxy holds,
// until either side fails; then it closes both.
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	defer l.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitForwarding(l) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a closed connection: close the other side too
		}
	}
}

// waitForwarding waits while the proxy holds; it reports false if the
// link was closed or is to be cut.
func (p *Proxy) waitForwarding(l *link) bool {
	for {
		state, changed := p.gate()
		switch state {
		case Forwarding:
			return true
		case Cutting:
			return false
		}
		select {
		case <-changed:
		case <-l.closed:
			return false
		}
	}
}

// link is one proxied connection.
type link struct {
	client, broker net.Conn
	once           sync.Once
	closed         chan struct{} // closed by close
}

func newLink(client, broker net.Conn) *link {
	return &link{client: client, broker: broker, closed: make(chan struct{})}
}

func (l *link) close() {
	l.once.Do(func() {
		_ = l.client.Close()
		_ = l.broker.Close()
		close(l.closed)
	})
}

// listener is a broker's own listener reporting the proxy's front
// address.
type listener struct {
	net.Listener
	front net.Listener
}

func (l *listener) Addr() net.Addr { return l.front.Addr() }

func (l *listener) Close() error {
	return errors.Join(l.front.Close(), l.Listener.Close())
}
