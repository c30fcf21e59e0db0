package agent

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// Live job tail (job.tail.<pc_id>), as upstream's live_tail and job_tail:
// while a command runs, every chunk of its stdout and stderr also goes to
// a ring that keeps the last jobTailCap bytes of each stream; a request
// names the run by result_id and gets the rings' current contents. A
// finished run's rings are kept jobTailGrace (so a last poll sees the end
// of the output with running false) and then dropped lazily, at the next
// registration or request.
const (
	// jobTailCap is the bytes kept per stream (upstream's LIVE_TAIL_CAP).
	jobTailCap = 128 << 10
	// jobTailSlack is how far a ring may grow past jobTailCap before it
	// drops its oldest bytes, so that a stream of small writes does not
	// move the whole ring on each one (upstream's SLACK).
	jobTailSlack = 16 << 10
	// jobTailGrace is how long a finished run stays answerable (upstream's GRACE).
	jobTailGrace = time.Minute
	// jobTailMaxFinished bounds the finished runs kept through their grace
	// (ours: upstream keeps every one for the minute, which a burst of short
	// chatty commands turns into unbounded memory); the oldest go first.
	jobTailMaxFinished = 32
)

// Bounds on the job.tail requests answered: a burst, then one every
// interval; beyond them a request gets no answer (Stats.RequestsDropped).
// A console polls each running job every few seconds.
const (
	jobTailBurst = 20
	jobTailEvery = 250 * time.Millisecond
)

// tailRing keeps the last bytes written to it.
type tailRing struct {
	buf       []byte
	truncated bool // older bytes were dropped
}

func (r *tailRing) push(p []byte) {
	r.buf = append(r.buf, p...)
	if len(r.buf) > jobTailCap+jobTailSlack {
		n := copy(r.buf, r.buf[len(r.buf)-jobTailCap:])
		r.buf = r.buf[:n]
		r.truncated = true
	}
}

// snapshot returns the last jobTailCap bytes as lossy UTF-8, starting at a
// character boundary when bytes were cut off in front, and whether any
// were.
func (r *tailRing) snapshot() (string, bool) {
	start := max(0, len(r.buf)-jobTailCap)
	cut := start > 0 || r.truncated
	if cut {
		for start < len(r.buf) && r.buf[start]&0xC0 == 0x80 {
			start++
		}
	}
	return lossy(r.buf[start:]), cut
}

// liveTail is the output of one run.
type liveTail struct {
	mu       sync.Mutex
	out, err tailRing
	running  bool
	finished time.Time
	order    uint64 // finishing order, for dropping the oldest (clocks may tie)
}

// tap is a runner.Spec.Tap.
func (t *liveTail) tap(stderr bool, p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if stderr {
		t.err.push(p)
	} else {
		t.out.push(p)
	}
}

func (t *liveTail) reply() wire.JobTailReply {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := wire.JobTailReply{Found: true, Running: t.running}
	r.Stdout, r.StdoutTruncated = t.out.snapshot()
	r.Stderr, r.StderrTruncated = t.err.snapshot()
	return r
}

// tailRegistry holds the live tails by result_id.
type tailRegistry struct {
	mu       sync.Mutex
	m        map[string]*liveTail
	finished uint64 // runs finished so far
}

// start registers a live tail for resultID, replacing any earlier one.
func (r *tailRegistry) start(resultID string) *liveTail {
	t := &liveTail{running: true}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweep(time.Now())
	if r.m == nil {
		r.m = map[string]*liveTail{}
	}
	r.m[resultID] = t
	return t
}

// finish marks t's run finished; its tail stays answerable jobTailGrace.
func (r *tailRegistry) finish(t *liveTail) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished++
	t.mu.Lock()
	t.running, t.finished, t.order = false, time.Now(), r.finished
	t.mu.Unlock()
	r.sweep(time.Now())
}

// get returns the live tail of resultID, or nil.
func (r *tailRegistry) get(resultID string) *liveTail {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweep(time.Now())
	return r.m[resultID]
}

// sweep drops the tails finished more than jobTailGrace ago, and the
// oldest finished ones past jobTailMaxFinished. Called with r.mu held.
func (r *tailRegistry) sweep(now time.Time) {
	var done []string
	for id, t := range r.m {
		t.mu.Lock()
		running, fin := t.running, t.finished
		t.mu.Unlock()
		switch {
		case running:
		case now.Sub(fin) >= jobTailGrace:
			delete(r.m, id)
		default:
			done = append(done, id)
		}
	}
	if len(done) > jobTailMaxFinished {
		slices.SortFunc(done, func(a, b string) int { return cmp.Compare(r.m[a].finishOrder(), r.m[b].finishOrder()) })
		for _, id := range done[:len(done)-jobTailMaxFinished] {
			delete(r.m, id)
		}
	}
}

func (t *liveTail) finishOrder() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order
}

// onJobTail answers job.tail.<pc_id> with the live output of the run the
// request names by result_id (wire.JobTailRequest), as upstream's job-tail
// handler: found false when the agent holds no live tail for it (never ran
// here, or finished more than a minute ago). A malformed request is
// answered found false, as upstream (which reads it as result_id ""), with
// the reason in error (ours). While the agent enforces signatures, a
// request must be signed like a logs.fetch request (logsRefusal: the
// subject-bound form for this subject, at most 5 minutes old), since the
// reply shows what commands print; a refused one is answered found false
// with the reason in error. Requests beyond the rate limit get no answer.
func (a *Agent) onJobTail(m *nats.Msg) {
	now := time.Now()
	if !a.jobTailLimit.allow(now) {
		a.counters.requestsDropped.Add(1)
		return
	}
	var reply wire.JobTailReply
	if why := a.logsRefusal(m, now); why != "" {
		if n := logsRefusals.Add(1); n == 1 || n%100 == 0 {
			a.log.Warn("refusing job.tail: this agent enforces signatures", "reason", why, "refused_total", n)
		}
		reply.Error = "job.tail refused: " + why
	} else if req, err := wire.DecodeJobTailRequest(m.Data); err != nil {
		reply.Error = "bad job.tail request: " + oneLine(err.Error())
	} else if t := a.tails.get(req.ResultID); t != nil {
		reply = t.reply()
	}
	b, err := wire.Marshal(reply)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil {
		a.log.Warn("cannot answer job.tail", "err", err)
	}
}
