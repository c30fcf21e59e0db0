package outbox

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The outboxes that drain over one connection share one JetStream async
// publisher (per ack timeout): a publisher costs a reply subscription (with
// its goroutine), a goroutine that watches the connection, a random source
// and its maps, about 12 KiB and two goroutines, and an agent drains three
// outboxes over its connection. Each publish is registered to the outbox
// that made it, and its ack or error reaches that outbox only.

// sharedMaxPending is the shared publisher's bound on publishes awaiting
// their ack. Each outbox bounds its own (Options.Window and
// MaxInflightBytes) before it publishes; this one must never be what stops
// an outbox, since a stalled outbox waits for acks of its own.
const sharedMaxPending = 1 << 30

// pubKey names a shared publisher.
type pubKey struct {
	nc         *nats.Conn
	ackTimeout time.Duration
}

// sharedPub is one JetStream context publishing for the outboxes that use
// one connection with one ack timeout.
type sharedPub struct {
	key  pubKey
	js   jetstream.JetStream
	refs int // users; guarded by sharedPubs.mu

	mu     sync.Mutex
	owners map[*nats.Msg]*pubUser // publishes awaiting their ack, by message
}

var sharedPubs = struct {
	mu sync.Mutex
	m  map[pubKey]*sharedPub
}{m: map[pubKey]*sharedPub{}}

// pubUser is one drainer's view of a shared publisher: a
// jetstream.JetStream whose async publishes report to push, and whose
// CleanupPublisher releases the drainer's share.
type pubUser struct {
	jetstream.JetStream // the shared context: every other method as is
	sp                  *sharedPub
	push                func(result)
}

// acquirePub returns a share of the publisher of nc and ackTimeout,
// creating it for the first user. Release it with CleanupPublisher.
func acquirePub(nc *nats.Conn, ackTimeout time.Duration, push func(result)) (*pubUser, error) {
	sharedPubs.mu.Lock()
	defer sharedPubs.mu.Unlock()
	k := pubKey{nc: nc, ackTimeout: ackTimeout}
	sp := sharedPubs.m[k]
	if sp == nil {
		sp = &sharedPub{key: k, owners: map[*nats.Msg]*pubUser{}}
		js, err := jetstream.New(nc,
			jetstream.WithPublishAsyncMaxPending(sharedMaxPending),
			jetstream.WithPublishAsyncTimeout(ackTimeout),
			jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
				sp.deliver(m, nil)
			}),
			jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
				sp.deliver(m, err)
			}),
		)
		if err != nil {
			return nil, err
		}
		sp.js = js
		sharedPubs.m[k] = sp
	}
	sp.refs++
	return &pubUser{JetStream: sp.js, sp: sp, push: push}, nil
}

// deliver hands the ack or error of m to the outbox that published it, if
// it still waits for it (an outbox that dropped its share has requeued
// its publishes in flight).
func (sp *sharedPub) deliver(m *nats.Msg, err error) {
	sp.mu.Lock()
	u := sp.owners[m]
	delete(sp.owners, m)
	sp.mu.Unlock()
	if u != nil {
		u.push(result{msg: m, err: err})
	}
}

// PublishMsgAsync publishes m on the shared context; its ack or error
// goes to u's drainer.
func (u *pubUser) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	sp := u.sp
	sp.mu.Lock()
	sp.owners[m] = u // before the publish: the ack may come before it returns
	sp.mu.Unlock()
	f, err := sp.js.PublishMsgAsync(m, opts...)
	if err != nil { // no callback comes for a publish that failed here
		sp.mu.Lock()
		delete(sp.owners, m)
		sp.mu.Unlock()
	}
	return f, err
}

// PublishAsync is PublishMsgAsync of a message with subj and data.
func (u *pubUser) PublishAsync(subj string, data []byte, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	return u.PublishMsgAsync(&nats.Msg{Subject: subj, Data: data}, opts...)
}

// CleanupPublisher releases u's share: acks still to come for its
// publishes are dropped, and the shared context's publisher is cleaned up
// with its last user. u must not be used after.
func (u *pubUser) CleanupPublisher() {
	sp := u.sp
	sp.mu.Lock()
	for m, owner := range sp.owners {
		if owner == u {
			delete(sp.owners, m)
		}
	}
	sp.mu.Unlock()
	sharedPubs.mu.Lock()
	sp.refs--
	last := sp.refs == 0
	if last {
		delete(sharedPubs.m, sp.key)
	}
	sharedPubs.mu.Unlock()
	if last {
		sp.js.CleanupPublisher()
	}
}
