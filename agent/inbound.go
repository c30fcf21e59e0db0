package agent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// inbound puts every command message the agent receives, live on its core
// subscriptions and replayed from EXEC, in one queue handled by one
// goroutine, so commands are claimed (and queue for the limiter) in the
// order they reached the agent.
//
// The live subscriptions are channel subscriptions: nats.go's read loop
// pushes each message into ch as it reads it from the socket, so live
// messages keep their socket order. A replayed copy of a command reaches
// the socket after its live copy (the server delivers to subscribers before
// the stream's consumer sees the message), and the replay handler pushes it
// into the same channel later still, so the live copy is claimed first and
// the replayed one is a duplicate. Two goroutines claiming concurrently
// would let a replay of command n+1 overtake the live copy of command n,
// which EXEC (one message per subject) may never replay.
//
// The channel is a lane's (see inboundLane): up to laneAgents inbounds of
// the process share one channel and one mover goroutine, which routes each
// message by its subscription to its inbound and puts it at once in that
// inbound's raw queue of at most inboundRawMax messages: the read loop never
// blocks (a full channel would count as a slow consumer and drop messages).
// A screen worker takes the raw messages in order and passes each to
// screen, when set: a message that screen keeps is queued with the tag
// screen returned, one that it does not keep is the screen's to finish (and
// to ack). The agent's screen checks the signature there, without touching
// the disk, so while it enforces, unsigned or forged messages never take
// room in the queue and cannot push signed commands out of it. The queue is
// bounded in bytes, so a flood of large commands cannot exhaust memory.
// Past either bound, live messages are dropped and counted; replayed ones
// are left unacked, so JetStream delivers them again after the ack wait. A
// handler worker takes the queue in order.
//
// The raw queue plays the part of a large per-agent channel buffer, but it
// is a slice that grows with a burst and is let go after it; the screen and
// the handler workers are goroutines started when their queue gets its
// first message and ended when it is empty again, one of each at most, so
// the order is kept. An idle agent holds no goroutine and no buffer of its
// own for its commands.
type inbound struct {
	acks    sync.Map // *nats.Msg → func(): the ack of a replayed message
	max     int
	dropped atomic.Int64
	onDrop  func(m *nats.Msg, replayed bool, n int64)
	// screen, when set, is called by the screen worker for each message
	// in arrival order; ack is nil for a live message. It must not block.
	screen func(m *nats.Msg, ack func()) (keep bool, tag any)
	// key routes the replayed messages (and a test's) to this inbound.
	key *nats.Subscription

	mu        sync.Mutex
	lane      *inboundLane // nil until the first subscribe or start
	subs      []*nats.Subscription
	raw       []*nats.Msg // moved from the lane, not screened yet
	queue     []inItem    // screened, waiting for the handler
	bytes     int         // of queue
	screening bool        // a screen worker runs
	handling  bool        // a handler worker runs
	closed    bool
	handle    func(m *nats.Msg, ack func(), tag any)
	workers   sync.WaitGroup
}

// inItem is a queued message with its ack (nil for a live message) and the
// screen's tag.
type inItem struct {
	m   *nats.Msg
	ack func()
	tag any
}

const (
	// inboundChanCap is the channel of a lane: the most messages its
	// inbounds' read loops may deliver before its mover runs.
	inboundChanCap = 4096
	// laneAgents is the most inbounds sharing a lane.
	laneAgents = 8
	// inboundRawMax bounds the messages of one inbound moved and not
	// screened yet, as the channel of 4,096 messages of its own that an
	// agent used to have did.
	inboundRawMax   = 4096
	inboundMaxBytes = 64 << 20 // commands waiting to be claimed
)

func newInbound(maxBytes int, onDrop func(m *nats.Msg, replayed bool, n int64)) *inbound {
	return &inbound{max: maxBytes, onDrop: onDrop, key: new(nats.Subscription)}
}

// inboundLane is a channel shared by the command subscriptions of up to
// laneAgents inbounds of the process, and the mover that empties it into
// their raw queues. A process running one agent gives it a lane of its
// own, as large as the channel it used to have; a process running a fleet
// (fleet-sim, an embedder) pays for one channel and one mover per
// laneAgents agents.
type inboundLane struct {
	ch     chan *nats.Msg
	stop   chan struct{}
	mu     sync.RWMutex
	routes map[*nats.Subscription]router
	users  int // guarded by lanes.mu
}

// router takes a lane's message for its subscription, without blocking.
type router interface{ admit(m *nats.Msg) }

// lanes are the lanes with room for another inbound.
var lanes struct {
	mu   sync.Mutex
	open []*inboundLane
}

// acquireLane returns a lane with room and routes in.key to in on it.
func acquireLane(in *inbound) *inboundLane {
	lanes.mu.Lock()
	defer lanes.mu.Unlock()
	var l *inboundLane
	if n := len(lanes.open); n > 0 {
		l = lanes.open[n-1]
	} else {
		l = &inboundLane{ch: make(chan *nats.Msg, inboundChanCap), stop: make(chan struct{}),
			routes: map[*nats.Subscription]router{}}
		lanes.open = append(lanes.open, l)
		go l.move()
	}
	l.users++
	if l.users == laneAgents {
		lanes.open = lanes.open[:len(lanes.open)-1]
	}
	l.mu.Lock()
	l.routes[in.key] = in
	l.mu.Unlock()
	return l
}

// releaseLane forgets in's routes; the last inbound of a lane stops its mover.
func releaseLane(l *inboundLane, in *inbound, subs []*nats.Subscription) {
	l.mu.Lock()
	delete(l.routes, in.key)
	for _, s := range subs {
		delete(l.routes, s)
	}
	l.mu.Unlock()
	lanes.mu.Lock()
	defer lanes.mu.Unlock()
	if l.users == laneAgents {
		lanes.open = append(lanes.open, l)
	}
	l.users--
	if l.users == 0 {
		lanes.open = slices.DeleteFunc(lanes.open, func(o *inboundLane) bool { return o == l })
		close(l.stop)
	}
}

// move routes the lane's messages to their inbounds until the lane stops.
// A message whose inbound is gone is dropped.
func (l *inboundLane) move() {
	for {
		select {
		case m := <-l.ch:
			l.mu.RLock()
			r := l.routes[m.Sub]
			l.mu.RUnlock()
			if r != nil {
				r.admit(m)
			}
		case <-l.stop:
			return
		}
	}
}

// getLane returns in's lane, acquiring one the first time; nil once in
// stopped (its lane may be another inbound's by then).
func (in *inbound) getLane() *inboundLane {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return nil
	}
	if in.lane == nil {
		in.lane = acquireLane(in)
	}
	return in.lane
}

// subscribe subscribes subj on nc into in, in arrival order with the
// other command subjects.
func (in *inbound) subscribe(nc *nats.Conn, subj string) (*nats.Subscription, error) {
	return in.subscribeTo(nc, subj, in)
}

// subscribeTo subscribes subj on nc through in's lane to r; the route
// lasts until in stops.
func (in *inbound) subscribeTo(nc *nats.Conn, subj string, r router) (*nats.Subscription, error) {
	l := in.getLane()
	if l == nil {
		return nil, errInboundClosed
	}
	// The route is in place before the server may deliver anything.
	l.mu.Lock()
	defer l.mu.Unlock()
	sub, err := nc.ChanSubscribe(subj, l.ch)
	if err != nil {
		return nil, err
	}
	l.routes[sub] = r
	in.mu.Lock()
	in.subs = append(in.subs, sub)
	in.mu.Unlock()
	return sub, nil
}

var errInboundClosed = errors.New("agent: command intake stopped")

// replay queues a message from the EXEC consumer behind every live message
// read before it. It waits while the lane's channel is full, until ctx ends.
func (in *inbound) replay(ctx context.Context, subj string, hdr nats.Header, data []byte, ack func()) {
	l := in.getLane()
	if l == nil {
		return
	}
	m := &nats.Msg{Subject: subj, Header: hdr, Data: data, Sub: in.key}
	in.acks.Store(m, ack)
	select {
	case l.ch <- m:
	case <-ctx.Done():
		in.acks.Delete(m)
	}
}

func msgSize(m *nats.Msg) int {
	n := len(m.Subject) + len(m.Data)
	for k, vs := range m.Header {
		n += len(k)
		for _, v := range vs {
			n += len(v)
		}
	}
	return n
}

// start makes in call handle for each message kept by the screen, in
// order, on the workers it starts on demand. ack is nil for a live message;
// tag is what the screen returned.
func (in *inbound) start(handle func(m *nats.Msg, ack func(), tag any)) {
	in.getLane()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.handle = handle
	in.startHandler()
}

// startHandler starts the handler worker when there is work and none runs.
// in.mu must be held.
func (in *inbound) startHandler() {
	if len(in.queue) > 0 && !in.handling && !in.closed && in.handle != nil {
		in.handling = true
		in.workers.Add(1)
		go in.handleLoop()
	}
}

// stop ends in: it returns once the workers stopped (a handle in progress
// is waited for); messages still queued are dropped (replayed ones
// unacked), and so are those that arrive later.
func (in *inbound) stop() {
	in.mu.Lock()
	in.closed = true
	l, subs := in.lane, in.subs
	in.mu.Unlock()
	in.workers.Wait()
	if l != nil {
		releaseLane(l, in, subs)
	}
}

// run is start, then stop once ctx ends.
func (in *inbound) run(ctx context.Context, handle func(m *nats.Msg, ack func(), tag any)) {
	in.start(handle)
	<-ctx.Done()
	in.stop()
}

// admit puts m in the raw queue, or drops it when the queue is full, and
// starts the screen worker when none runs. It runs on the lane's mover and
// never blocks on more than in.mu.
func (in *inbound) admit(m *nats.Msg) {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		in.acks.Delete(m)
		return
	}
	if len(in.raw) >= inboundRawMax {
		in.mu.Unlock()
		_, replayed := in.acks.LoadAndDelete(m)
		in.drop(m, replayed)
		return
	}
	in.raw = append(in.raw, m)
	if !in.screening {
		in.screening = true
		in.workers.Add(1)
		go in.screenLoop()
	}
	in.mu.Unlock()
}

// drop counts a message dropped for want of room.
func (in *inbound) drop(m *nats.Msg, replayed bool) {
	n := in.dropped.Add(1)
	if in.onDrop != nil {
		in.onDrop(m, replayed, n)
	}
}

// screenLoop screens the raw messages in order until the raw queue is
// empty or the inbound closed.
func (in *inbound) screenLoop() {
	defer in.workers.Done()
	for {
		in.mu.Lock()
		if len(in.raw) == 0 || in.closed {
			in.screening = false
			in.raw = nil // let the backing array go after a burst
			in.mu.Unlock()
			return
		}
		m := in.raw[0]
		in.raw[0] = nil
		in.raw = in.raw[1:]
		in.mu.Unlock()
		in.screenOne(m)
	}
}

// screenOne screens m and queues it when the screen keeps it.
func (in *inbound) screenOne(m *nats.Msg) {
	it := inItem{m: m}
	if f, ok := in.acks.LoadAndDelete(m); ok {
		it.ack = f.(func())
	}
	if in.screen != nil {
		keep, tag := in.screen(m, it.ack)
		if !keep {
			return
		}
		it.tag = tag
	}
	in.push(it)
}

// push queues it when it fits the byte bound (a message alone always
// fits) and starts the handler worker when none runs.
func (in *inbound) push(it inItem) {
	size := msgSize(it.m)
	in.mu.Lock()
	if len(in.queue) > 0 && in.bytes+size > in.max {
		in.mu.Unlock()
		in.drop(it.m, it.ack != nil)
		return
	}
	in.queue = append(in.queue, it)
	in.bytes += size
	in.startHandler()
	in.mu.Unlock()
}

// handleLoop calls handle for each queued message in order until the
// queue is empty or the inbound closed.
func (in *inbound) handleLoop() {
	defer in.workers.Done()
	for {
		in.mu.Lock()
		if len(in.queue) == 0 || in.closed {
			in.handling = false
			in.queue = nil // let the backing array go after a burst
			in.mu.Unlock()
			return
		}
		it := in.queue[0]
		in.queue[0] = inItem{}
		in.queue = in.queue[1:]
		in.bytes -= msgSize(it.m)
		handle := in.handle
		in.mu.Unlock()
		handle(it.m, it.ack, it.tag)
	}
}
