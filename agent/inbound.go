package agent

import (
	"context"
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
// A mover drains ch at once into a queue bounded in bytes: the read loop
// never blocks (a full channel would count as a slow consumer and drop
// messages), and a flood of large commands cannot exhaust memory. Past the
// bound, live messages are dropped and counted; replayed ones are left
// unacked, so JetStream delivers them again after the ack wait.
//
// The mover first passes each message to screen, when set: a message that
// screen keeps is queued with the tag screen returned, one that it does
// not keep is the screen's to finish (and to ack). The agent's screen
// checks the signature there, without touching the disk, so while it
// enforces, unsigned or forged messages never take room in the queue and
// cannot push signed commands out of it.
type inbound struct {
	ch      chan *nats.Msg
	acks    sync.Map // *nats.Msg → func(): the ack of a replayed message
	max     int
	dropped atomic.Int64
	onDrop  func(m *nats.Msg, replayed bool, n int64)
	// screen, when set, is called by the mover for each message in arrival
	// order; ack is nil for a live message. It must not block.
	screen func(m *nats.Msg, ack func()) (keep bool, tag any)

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []inItem
	bytes  int
	closed bool
}

// inItem is a queued message with its ack (nil for a live message) and the
// screen's tag.
type inItem struct {
	m   *nats.Msg
	ack func()
	tag any
}

const (
	inboundChanCap  = 4096     // messages between the read loop and the mover
	inboundMaxBytes = 64 << 20 // commands waiting to be claimed
)

func newInbound(maxBytes int, onDrop func(m *nats.Msg, replayed bool, n int64)) *inbound {
	in := &inbound{ch: make(chan *nats.Msg, inboundChanCap), max: maxBytes, onDrop: onDrop}
	in.cond = sync.NewCond(&in.mu)
	return in
}

// replay queues a message from the EXEC consumer behind every live message
// read before it. It waits while the channel is full, until ctx ends.
func (in *inbound) replay(ctx context.Context, subj string, hdr nats.Header, data []byte, ack func()) {
	m := &nats.Msg{Subject: subj, Header: hdr, Data: data}
	in.acks.Store(m, ack)
	select {
	case in.ch <- m:
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

// run moves messages from the channel to the queue and calls handle for
// each kept by the screen, in order, until ctx ends. ack is nil for a live
// message; tag is what the screen returned.
func (in *inbound) run(ctx context.Context, handle func(m *nats.Msg, ack func(), tag any)) {
	stop := context.AfterFunc(ctx, func() {
		in.mu.Lock()
		in.closed = true
		in.mu.Unlock()
		in.cond.Broadcast()
	})
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case m := <-in.ch:
				in.admit(m)
			case <-ctx.Done():
				return
			}
		}
	}()
	defer wg.Wait()
	for {
		it, ok := in.pop()
		if !ok {
			return
		}
		handle(it.m, it.ack, it.tag)
	}
}

// admit screens m and queues it when the screen keeps it.
func (in *inbound) admit(m *nats.Msg) {
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

func (in *inbound) push(it inItem) {
	size := msgSize(it.m)
	in.mu.Lock()
	if len(in.queue) > 0 && in.bytes+size > in.max {
		in.mu.Unlock()
		n := in.dropped.Add(1)
		if in.onDrop != nil {
			in.onDrop(it.m, it.ack != nil, n)
		}
		return
	}
	in.queue = append(in.queue, it)
	in.bytes += size
	in.mu.Unlock()
	in.cond.Signal()
}

func (in *inbound) pop() (inItem, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for len(in.queue) == 0 && !in.closed {
		in.cond.Wait()
	}
	if in.closed {
		return inItem{}, false
	}
	it := in.queue[0]
	in.queue[0] = inItem{}
	in.queue = in.queue[1:]
	in.bytes -= msgSize(it.m)
	if len(in.queue) == 0 {
		in.queue = nil // let the backing array go after a burst
	}
	return it, true
}
