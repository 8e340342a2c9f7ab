package app

import (
	"net"
	"net/http"
	"sync"
)

// unusedConns tracks the connections that have not sent a request yet
// (http.StateNew), so that a shutdown closes them at once. http.Server.Shutdown
// closes idle keep-alive connections at once but waits for such a connection until
// it is 5 seconds old (Go issue 22682), in case a slow client's first request is
// under way; and HTTP clients keep them: a pool that dialled for a request which
// another connection served meanwhile keeps the new connection, unused. One of them
// made every shutdown take 5 seconds or more, past a shorter server.shutdownTimeout
// (and serve exited 1). Closing one whose request is arriving at that very moment
// cuts that request off before it is served, the race Shutdown accepts for idle
// keep-alive connections too; the client sees a connection error and tries again.
type unusedConns struct {
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool // a connection accepted from now on is closed as it comes
}

// track is the servers' ConnState hook.
func (u *unusedConns) track(c net.Conn, state http.ConnState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if state != http.StateNew {
		delete(u.conns, c)
		return
	}
	if u.closing {
		_ = c.Close()
		return
	}
	if u.conns == nil {
		u.conns = map[net.Conn]struct{}{}
	}
	u.conns[c] = struct{}{}
}

// closeAll closes the connections that have not sent a request, and those accepted
// from now on before the listeners close.
func (u *unusedConns) closeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closing = true
	for c := range u.conns {
		_ = c.Close()
	}
	clear(u.conns)
}
