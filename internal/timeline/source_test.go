package timeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// fixtureNow is the clock of the tests: every fixture but the old one is
// within the 24 h look-back.
var fixtureNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// fakeLog is an EventLog serving recorded event XML. It answers every
// query of a channel with all its documents (the Source keeps those of
// the row and after the watermark, as it would for a real answer) and
// records the queries.
type fakeLog struct {
	mu      sync.Mutex
	docs    map[string][]string
	queries []string
	err     error
}

func (f *fakeLog) Query(ctx context.Context, channel, query string, max int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, channel+" "+query)
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.docs[channel]), nil
}

func (f *fakeLog) add(channel, doc string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.docs[channel] = append(f.docs[channel], doc)
}

// recordedLog returns a fakeLog holding every fixture of testdata and two
// malformed documents.
func recordedLog(t testing.TB) *fakeLog {
	t.Helper()
	f := &fakeLog{docs: map[string][]string{}}
	ents, err := fixtures.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".xml") {
			continue
		}
		b := readFixture(t, e.Name())
		ev, err := DecodeEventXML(b)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		f.add(ev.Channel, string(b))
	}
	f.add("System", "<Event><System><EventID>12</EventID>")
	f.add("Security", "garbage")
	return f
}

func testLog(t testing.TB, buf *natstest.Buffer) *slog.Logger {
	if buf != nil {
		return slog.New(slog.NewTextHandler(buf, nil))
	}
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// newTestSource returns a Source over log, watermarks in dir, no wtmp,
// clock fixtureNow; polled receives a value after every poll.
func newTestSource(t testing.TB, dir string, log EventLog, buf *natstest.Buffer) (*Source, chan struct{}) {
	t.Helper()
	s, err := New(Options{Dir: dir, EventLog: log, NoWtmp: true, NoJournal: true, ResolveSID: fakeResolve, Log: testLog(t, buf), Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return fixtureNow }
	polled := make(chan struct{}, 100)
	s.afterPoll = func() { polled <- struct{}{} }
	return s, polled
}

// runPolls runs s with emit until it has polled n times, then stops it.
func runPolls(t testing.TB, s *Source, emit Emit, n int, polled chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, emit) }()
	for range n {
		select {
		case <-polled:
		case <-time.After(30 * time.Second):
			t.Fatal("no poll within 30 s")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// collector is an emit that records events, failing those fail selects.
type collector struct {
	mu   sync.Mutex
	evs  []wire.ObsEvent
	fail func(wire.ObsEvent) bool
}

func (c *collector) emit(_ context.Context, ev wire.ObsEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil && c.fail(ev) {
		return errors.New("disk full")
	}
	c.evs = append(c.evs, ev)
	return nil
}

func (c *collector) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.evs {
		out = append(out, e.Source+"/"+e.EventRecordID)
	}
	slices.Sort(out)
	return out
}

// mappedIDs is source/record id of every mapped fixture, sorted.
func mappedIDs() []string {
	var out []string
	for _, m := range mapped {
		out = append(out, m.source+"/"+m.recordID)
	}
	slices.Sort(out)
	return out
}

// TestSourceEmitsEachEventOnceAcrossRestarts runs a Source in a real agent
// over the recorded events, stops the agent, starts another agent and
// Source on the same data directory with one more event recorded, and
// checks that OBS_EVENTS holds every event exactly once, with the fields
// of the mapping.
func TestSourceEmitsEachEventOnceAcrossRestarts(t *testing.T) {
	srv := natstest.RunServer(t)
	dir := natstest.TempDir(t)
	log := recordedLog(t)
	const pc = "pc-timeline"

	runAgent := func() {
		src, polled := newTestSource(t, dir, log, nil)
		a, err := agent.New(agent.Options{PcID: pc, DataDir: dir, Servers: []string{srv.URL()}, DisableInventory: true,
			Logger: testLog(t, nil), ObsSources: []agent.ObsSource{src}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent Run: %v", err)
			}
		}()
		select {
		case <-polled:
		case <-time.After(60 * time.Second):
			t.Fatal("no poll within 60 s")
		}
		natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			if p := a.Stats().Outbox["obs"].Pending; p != 0 {
				return fmt.Errorf("%d obs events pending", p)
			}
			return nil
		})
	}
	runAgent()
	got := obsEvents(t, srv, pc)
	if ids := winlogIDs(got); !slices.Equal(ids, mappedIDs()) {
		t.Fatalf("first run published\n%v\nwant\n%v", ids, mappedIDs())
	}
	for _, m := range mapped {
		ev := got[m.source+"/"+m.recordID][0]
		want, _ := time.Parse(time.RFC3339Nano, m.at)
		if ev.Kind != m.kind || !ev.At.Equal(want) || ev.PcID != pc {
			t.Errorf("%s: kind %s at %v pc %s, want %s %v %s", m.file, ev.Kind, ev.At, ev.PcID, m.kind, want, pc)
		}
		var p1, p2 any
		_ = json.Unmarshal(ev.Payload, &p1)
		_ = json.Unmarshal([]byte(m.payload), &p2)
		if fmt.Sprint(p1) != fmt.Sprint(p2) {
			t.Errorf("%s: payload %s, want %s", m.file, ev.Payload, m.payload)
		}
	}

	// Restart with one more event, the last row's.
	log.add("System", strings.Replace(string(readFixture(t, "system-6006-eventlog.xml")), "<EventRecordID>100202<", "<EventRecordID>100300<", 1))
	runAgent()
	want := append(mappedIDs(), "winlog:System/100300")
	slices.Sort(want)
	got = obsEvents(t, srv, pc)
	if ids := winlogIDs(got); !slices.Equal(ids, want) {
		t.Fatalf("after the restart OBS_EVENTS holds\n%v\nwant\n%v", ids, want)
	}
}

// obsEvents reads every ObsEvent of pc in OBS_EVENTS, by source/record id.
func obsEvents(t *testing.T, srv *natstest.Server, pc string) map[string][]wire.ObsEvent {
	t.Helper()
	nc := natstest.Connect(t, srv.URL())
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, subject.StreamObs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := subject.Obs(pc)
	out := map[string][]wire.ObsEvent{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != subj {
			continue
		}
		ev, err := wire.DecodeObsEvent(m.Data)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		k := ev.Source + "/" + ev.EventRecordID
		out[k] = append(out[k], *ev)
	}
	return out
}

// winlogIDs lists the winlog: keys of evs, once per copy, sorted.
func winlogIDs(evs map[string][]wire.ObsEvent) []string {
	var out []string
	for k, v := range evs {
		if strings.HasPrefix(k, "winlog:") {
			for range v {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestEmitErrorDoesNotAdvance: an event whose emit fails is not passed by
// the watermark (neither in memory nor on disk): the next poll, in
// another Source on the same directory, emits it and nothing else.
func TestEmitErrorDoesNotAdvance(t *testing.T) {
	dir := natstest.TempDir(t)
	log := recordedLog(t)
	s, polled := newTestSource(t, dir, log, nil)
	c := &collector{fail: func(ev wire.ObsEvent) bool { return ev.EventRecordID == "100150" || ev.EventRecordID == "55001" }}
	runPolls(t, s, c.emit, 1, polled)
	var want []string
	for _, id := range mappedIDs() {
		if id != "winlog:System/100150" && id != "winlog:Security/55001" {
			want = append(want, id)
		}
	}
	if got := c.ids(); !slices.Equal(got, want) {
		t.Fatalf("first poll emitted\n%v\nwant\n%v", got, want)
	}
	wm := readWatermark(t, dir)
	if v, ok := wm["System:Microsoft-Windows-Kernel-Power:42:sleep"]; ok {
		t.Errorf("watermark of the failed row advanced to %d", v)
	}
	if v := wm["Security::4801:unlock"]; v != 55007 {
		t.Errorf("watermark of 4801 = %d, want 55007", v)
	}

	// A later poll in the same Source tries them again.
	c2 := &collector{}
	s.afterPoll = func() { polled <- struct{}{} }
	runPolls(t, s, c2.emit, 1, polled)
	if got, want := c2.ids(), []string{"winlog:Security/55001", "winlog:System/100150"}; !slices.Equal(got, want) {
		t.Fatalf("second poll emitted %v, want %v", got, want)
	}
	// And a new Source on the same directory emits nothing more.
	s3, polled3 := newTestSource(t, dir, log, nil)
	c3 := &collector{}
	runPolls(t, s3, c3.emit, 1, polled3)
	if got := c3.ids(); len(got) != 0 {
		t.Fatalf("after a restart emitted %v, want nothing", got)
	}
	// Its queries carry the watermark and the 24 h floor.
	if q := strings.Join(log.queries, "\n"); !strings.Contains(q, "System *[System[Provider[@Name='Microsoft-Windows-Kernel-Power'] and (EventID=42) and TimeCreated[@SystemTime>='2026-12-01T12:00:00.000Z'] and (EventRecordID>100150)]]") {
		t.Errorf("queries do not carry the watermark:\n%s", q)
	}
}

func readWatermark(t *testing.T, dir string) map[string]uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, winlogWatermarkFile))
	if err != nil {
		t.Fatal(err)
	}
	var wm map[string]uint64
	if err := json.Unmarshal(b, &wm); err != nil {
		t.Fatalf("watermark %s: %v", b, err)
	}
	return wm
}

// TestCorruptWatermark: a watermark file that is not JSON is logged and
// the look-back is read again (the old event stays out), and the file is
// written anew.
func TestCorruptWatermark(t *testing.T) {
	for _, content := range []string{`{"System::6005:log_service_started": 1`, `null`, `{"System::6005:log_service_started": -1}`, "\x00\x00"} {
		t.Run(content, func(t *testing.T) { testCorruptWatermark(t, content) })
	}
}

func testCorruptWatermark(t *testing.T, content string) {
	dir := natstest.TempDir(t)
	if err := os.WriteFile(filepath.Join(dir, winlogWatermarkFile), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf natstest.Buffer
	s, polled := newTestSource(t, dir, recordedLog(t), &buf)
	c := &collector{}
	runPolls(t, s, c.emit, 1, polled)
	if got := c.ids(); !slices.Equal(got, mappedIDs()) {
		t.Fatalf("emitted\n%v\nwant\n%v", got, mappedIDs())
	}
	if content != "null" && !strings.Contains(buf.String(), "timeline watermark unreadable") {
		t.Errorf("corrupt watermark not logged:\n%s", buf.String())
	}
	if wm := readWatermark(t, dir); wm["System::6006:log_service_stopped"] != 100202 {
		t.Errorf("watermark %v", wm)
	}
	if !strings.Contains(buf.String(), "event dropped") {
		t.Errorf("malformed events not logged:\n%s", buf.String())
	}
}

// TestUnsupportedEventLogKeepsRunning: an event log that cannot be read
// is reported once, and the source keeps polling.
func TestUnsupportedEventLogKeepsRunning(t *testing.T) {
	var buf natstest.Buffer
	log := &fakeLog{err: fmt.Errorf("%w: EvtQuery: not implemented", ErrUnsupported)}
	s, polled := newTestSource(t, natstest.TempDir(t), log, &buf)
	s.opts.Period = time.Millisecond
	runPolls(t, s, (&collector{}).emit, 3, polled)
	if n := strings.Count(buf.String(), "cannot read the Windows event log"); n != 1 {
		t.Errorf("reported %d times, want once:\n%s", n, buf.String())
	}
	if n := len(log.queries); n < 3 {
		t.Errorf("%d queries, want one per poll", n)
	}
}

func TestNewNeedsDir(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, ErrNoDir) {
		t.Fatalf("New: %v, want ErrNoDir", err)
	}
}
