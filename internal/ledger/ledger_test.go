package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

func TestClaimLaunchFinish(t *testing.T) {
	l := openT(t, natstest.TempDir(t), Options{})
	ok, st, err := l.Claim("r1")
	if !ok || st != StatePending || err != nil {
		t.Fatalf("Claim = %v, %v, %v; want true, pending, nil", ok, st, err)
	}
	mustState(t, l, "r1", StatePending)
	if err := l.Launching("r1", []byte(`{"exec_id":"e1"}`)); err != nil {
		t.Fatal(err)
	}
	e, _ := l.Lookup("r1")
	if e.State != StateLaunching || string(e.Meta) != `{"exec_id":"e1"}` {
		t.Fatalf("after Launching: %+v", e)
	}
	if err := l.Finished("r1"); err != nil {
		t.Fatal(err)
	}
	e, _ = l.Lookup("r1")
	if e.State != StateFinished || e.Meta != nil {
		t.Fatalf("after Finished: %+v", e)
	}
	ok, st, err = l.Claim("r1")
	if ok || st != StateFinished || err != nil {
		t.Fatalf("Claim of finished = %v, %v, %v", ok, st, err)
	}
}

func TestDuplicateClaimAndRelease(t *testing.T) {
	l := openT(t, natstest.TempDir(t), Options{})
	if ok, _, _ := l.Claim("r"); !ok {
		t.Fatal("first claim lost")
	}
	if ok, st, _ := l.Claim("r"); ok || st != StatePending {
		t.Fatalf("second claim = %v, %v", ok, st)
	}
	l.Release("r")
	mustState(t, l, "r", StateNone)
	if ok, _, _ := l.Claim("r"); !ok {
		t.Fatal("claim after release lost")
	}
	if err := l.Launching("r", nil); err != nil {
		t.Fatal(err)
	}
	l.Release("r") // not pending: no effect
	if ok, st, _ := l.Claim("r"); ok || st != StateLaunching {
		t.Fatalf("claim of launching = %v, %v", ok, st)
	}
}

func TestTransitionErrors(t *testing.T) {
	l := openT(t, natstest.TempDir(t), Options{})
	if err := l.Launching("nope", nil); !errors.Is(err, ErrNotClaimed) {
		t.Errorf("Launching unclaimed: %v", err)
	}
	if err := l.Finished("nope"); !errors.Is(err, ErrNotClaimed) {
		t.Errorf("Finished unclaimed: %v", err)
	}
	claimLaunch(t, l, "a", nil)
	if err := l.Launching("a", nil); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("Launching twice: %v", err)
	}
	if err := l.Finished("a"); err != nil {
		t.Fatal(err)
	}
	if err := l.Finished("a"); err != nil {
		t.Errorf("Finished twice: %v", err)
	}
	if err := l.Launching("a", nil); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("Launching after Finished: %v", err)
	}
	// A gate refusal finishes a pending entry directly.
	l.Claim("gated")
	if err := l.Finished("gated"); err != nil {
		t.Errorf("Finished pending: %v", err)
	}
	for _, id := range []string{"", strings.Repeat("x", MaxRequestIDLen+1)} {
		if _, _, err := l.Claim(id); !errors.Is(err, ErrInvalidRequestID) {
			t.Errorf("Claim(len %d): %v", len(id), err)
		}
	}
	l.Claim("big")
	if err := l.Launching("big", make([]byte, MaxMetaLen+1)); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("Launching big meta: %v", err)
	}
	if err := l.Launching("big", make([]byte, MaxMetaLen)); err != nil {
		t.Errorf("Launching max meta: %v", err)
	}
}

func TestConcurrentClaims(t *testing.T) {
	l := openT(t, natstest.TempDir(t), Options{})
	const ids, claimers = 200, 8
	var wins [ids]int
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < claimers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < ids; i++ {
				ok, _, err := l.Claim(fmt.Sprint("id-", i))
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					wins[i]++
					mu.Unlock()
					if i%2 == 0 {
						if err := l.Launching(fmt.Sprint("id-", i), nil); err != nil {
							t.Error(err)
						}
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, w := range wins {
		if w != 1 {
			t.Errorf("id-%d: %d winners", i, w)
		}
	}
}

func TestRestart(t *testing.T) {
	dir := natstest.TempDir(t)
	clk := newClock()
	l := openT(t, dir, Options{Now: clk.Now})
	claimFinish(t, l, "done")
	claimLaunch(t, l, "mid1", []byte("exec-1"))
	clk.Advance(time.Second)
	claimLaunch(t, l, "mid2", []byte("exec-2"))
	l.Claim("pend")
	l.Claim("released")
	l.Release("released")
	if got := l.Recovered(); len(got) != 0 {
		t.Fatalf("fresh ledger recovered %v", got)
	}
	closeT(t, l)

	l = openT(t, dir, Options{Now: clk.Now})
	mustState(t, l, "done", StateFinished)
	mustState(t, l, "mid1", StateLaunching)
	mustState(t, l, "pend", StateNone) // pending is not persisted
	mustState(t, l, "released", StateNone)
	rec := l.Recovered()
	if len(rec) != 2 || rec[0].RequestID != "mid1" || string(rec[0].Meta) != "exec-1" ||
		rec[1].RequestID != "mid2" || string(rec[1].Meta) != "exec-2" || rec[0].State != StateLaunching {
		t.Fatalf("Recovered = %+v", rec)
	}
	if !rec[0].At.Equal(clk.Now().Add(-time.Second)) {
		t.Errorf("Recovered[0].At = %v", rec[0].At)
	}
	for _, id := range []string{"done", "mid1"} {
		if ok, _, _ := l.Claim(id); ok {
			t.Fatalf("%s claimable after restart", id)
		}
	}
	if ok, _, _ := l.Claim("pend"); !ok {
		t.Fatal("pending entry survived restart")
	}
	// The agent reports exit 121 for each recovered entry, then finishes it.
	for _, e := range rec {
		if err := l.Finished(e.RequestID); err != nil {
			t.Fatal(err)
		}
	}
	closeT(t, l)

	l = openT(t, dir, Options{Now: clk.Now})
	if got := l.Recovered(); len(got) != 0 {
		t.Fatalf("recovered after finishing: %v", got)
	}
	mustState(t, l, "mid2", StateFinished)
}

// writeLog makes a ledger in dir with ids f0..f<n-1>: even ones finished,
// odd ones launching with meta "meta".
func writeLog(t *testing.T, dir string, n int) {
	t.Helper()
	l := openT(t, dir, Options{})
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			claimFinish(t, l, fmt.Sprint("f", i))
		} else {
			claimLaunch(t, l, fmt.Sprint("f", i), []byte("meta"))
		}
	}
	closeT(t, l)
}

// recordOffsets returns the start offset of every record in the log.
func recordOffsets(t *testing.T, path string) []int {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int
	for off := headerSize; off < len(data); {
		_, n, st := decodeFrame(data[off:])
		if st != frameOK {
			t.Fatalf("bad frame at %d", off)
		}
		offs = append(offs, off)
		off += n
	}
	return offs
}

func TestTornTail(t *testing.T) {
	// Cut the last record at every length from 1 byte to all but one.
	base := natstest.TempDir(t)
	src := filepath.Join(base, "src")
	writeLog(t, src, 5) // records: f0 L,F  f1 L  f2 L,F  f3 L  f4 L,F -> last is f4 finished
	logPath := filepath.Join(src, logName)
	full, _ := os.ReadFile(logPath)
	offs := recordOffsets(t, logPath)
	last := offs[len(offs)-1]
	for cut := last + 1; cut < len(full); cut += 3 {
		t.Run(fmt.Sprint("cut=", cut), func(t *testing.T) {
			dir := filepath.Join(base, fmt.Sprint("c", cut))
			os.Mkdir(dir, 0o700)
			if err := os.WriteFile(filepath.Join(dir, logName), full[:cut], 0o600); err != nil {
				t.Fatal(err)
			}
			l := openT(t, dir, Options{})
			for i := 0; i < 4; i++ {
				want := StateFinished
				if i%2 == 1 {
					want = StateLaunching
				}
				mustState(t, l, fmt.Sprint("f", i), want)
			}
			mustState(t, l, "f4", StateLaunching) // its finished record was torn
			if c := corruptFiles(t, dir); len(c) != 0 {
				t.Fatalf("torn tail preserved as corrupt: %v", c)
			}
			// The ledger keeps working, and the rewritten log is clean.
			if err := l.Finished("f4"); err != nil {
				t.Fatal(err)
			}
			closeT(t, l)
			l = openT(t, dir, Options{})
			mustState(t, l, "f4", StateFinished)
			if len(l.CorruptFiles()) != 0 {
				t.Fatal("second open found damage")
			}
		})
	}
}

func TestGarbageAppended(t *testing.T) {
	dir := natstest.TempDir(t)
	writeLog(t, dir, 4)
	garbage := []byte("this is not a ledger record, it is garbage\x00\x01\x02")
	f, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(garbage)
	f.Close()

	l := openT(t, dir, Options{})
	for i := 0; i < 4; i++ {
		want := StateFinished
		if i%2 == 1 {
			want = StateLaunching
		}
		mustState(t, l, fmt.Sprint("f", i), want)
	}
	cf := l.CorruptFiles()
	if len(cf) != 1 {
		t.Fatalf("CorruptFiles = %v", cf)
	}
	got, err := os.ReadFile(cf[0])
	if err != nil || !bytes.Equal(got, garbage) {
		t.Fatalf("preserved %q, %v; want the garbage", got, err)
	}
	claimFinish(t, l, "after")
	closeT(t, l)

	l = openT(t, dir, Options{})
	mustState(t, l, "after", StateFinished)
	if len(l.CorruptFiles()) != 0 || len(corruptFiles(t, dir)) != 1 {
		t.Fatalf("log not clean after rewrite: %v", corruptFiles(t, dir))
	}
}

func TestCorruptMiddleSalvage(t *testing.T) {
	dir := natstest.TempDir(t)
	l := openT(t, dir, Options{})
	claimLaunch(t, l, "before", []byte("m0"))
	claimLaunch(t, l, "damaged", []byte("m1"))
	claimLaunch(t, l, "after", []byte("m2"))
	claimFinish(t, l, "after2")
	closeT(t, l)
	path := filepath.Join(dir, logName)
	offs := recordOffsets(t, path)
	data, _ := os.ReadFile(path)
	data[offs[1]+frameSize+3] ^= 0xff // flip a byte in "damaged"'s timestamp
	os.WriteFile(path, data, 0o600)

	l = openT(t, dir, Options{})
	mustState(t, l, "before", StateLaunching)
	mustState(t, l, "damaged", StateNone)
	mustState(t, l, "after", StateLaunching) // salvaged
	mustState(t, l, "after2", StateFinished)
	if e, _ := l.Lookup("after"); string(e.Meta) != "m2" {
		t.Errorf("salvaged meta %q", e.Meta)
	}
	if n := len(l.Recovered()); n != 2 {
		t.Errorf("Recovered: %d entries, want 2", n)
	}
	cf := l.CorruptFiles()
	if len(cf) != 1 {
		t.Fatalf("CorruptFiles = %v", cf)
	}
	if got, _ := os.ReadFile(cf[0]); !bytes.Equal(got, data[offs[1]:]) {
		t.Error("corrupt file does not hold the damaged suffix")
	}
}

func TestBadHeader(t *testing.T) {
	dir := natstest.TempDir(t)
	writeLog(t, dir, 3)
	path := filepath.Join(dir, logName)
	data, _ := os.ReadFile(path)
	copy(data, "XXXXXXXX")
	os.WriteFile(path, data, 0o600)
	l := openT(t, dir, Options{})
	mustState(t, l, "f0", StateFinished)
	mustState(t, l, "f1", StateLaunching)
	mustState(t, l, "f2", StateFinished)
	if len(l.CorruptFiles()) != 1 {
		t.Fatalf("CorruptFiles = %v", l.CorruptFiles())
	}
}

func TestEmptyAndStrayFiles(t *testing.T) {
	dir := natstest.TempDir(t)
	os.WriteFile(filepath.Join(dir, logName), nil, 0o600)
	os.WriteFile(filepath.Join(dir, tmpName), []byte("half a compaction"), 0o600)
	l := openT(t, dir, Options{})
	if fileExists(filepath.Join(dir, tmpName)) {
		t.Error("stray tmp file not removed")
	}
	claimFinish(t, l, "x")
	closeT(t, l)
	l = openT(t, dir, Options{})
	mustState(t, l, "x", StateFinished)
}

func TestCompactionRetention(t *testing.T) {
	dir := natstest.TempDir(t)
	clk := newClock()
	opts := Options{Now: clk.Now, Retention: 30 * 24 * time.Hour}
	l := openT(t, dir, opts)
	for i := 0; i < 10; i++ {
		claimFinish(t, l, fmt.Sprint("old", i))
	}
	claimLaunch(t, l, "stuck", []byte("exec-stuck")) // launching: never pruned
	clk.Advance(20 * 24 * time.Hour)
	for i := 0; i < 10; i++ {
		claimFinish(t, l, fmt.Sprint("new", i))
	}
	clk.Advance(15 * 24 * time.Hour) // old: 35 days, new: 15 days
	sizeBefore, _ := os.Stat(filepath.Join(dir, logName))
	if err := l.Compact(); err != nil {
		t.Fatal(err)
	}
	check := func(l *Ledger) {
		t.Helper()
		for i := 0; i < 10; i++ {
			mustState(t, l, fmt.Sprint("old", i), StateNone)
			mustState(t, l, fmt.Sprint("new", i), StateFinished)
		}
		mustState(t, l, "stuck", StateLaunching)
	}
	check(l)
	sizeAfter, _ := os.Stat(filepath.Join(dir, logName))
	if sizeAfter.Size() >= sizeBefore.Size() {
		t.Errorf("log did not shrink: %d -> %d", sizeBefore.Size(), sizeAfter.Size())
	}
	claimFinish(t, l, "post") // appends after a compaction land in the new file
	closeT(t, l)
	l = openT(t, dir, opts)
	check(l)
	mustState(t, l, "post", StateFinished)
	if r := l.Recovered(); len(r) != 1 || string(r[0].Meta) != "exec-stuck" {
		t.Fatalf("Recovered = %+v", r)
	}
	// Expiry is also applied at Open.
	closeT(t, l)
	clk.Advance(20 * 24 * time.Hour)
	l = openT(t, dir, opts)
	mustState(t, l, "new0", StateNone)
	mustState(t, l, "stuck", StateLaunching)
}

func TestCompactionMaxEntries(t *testing.T) {
	dir := natstest.TempDir(t)
	clk := newClock()
	opts := Options{Now: clk.Now, MaxEntries: 8}
	l := openT(t, dir, opts)
	for i := 0; i < 20; i++ {
		clk.Advance(time.Minute)
		claimFinish(t, l, fmt.Sprint("e", i))
	}
	// Compaction runs on its own past MaxEntries + 1/8; force the last one.
	if err := l.Compact(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		want := StateFinished
		if i < 12 {
			want = StateNone
		}
		mustState(t, l, fmt.Sprint("e", i), want)
	}
	if l.compactions.Load() < 3 { // creation, automatic, Compact
		t.Errorf("automatic compaction did not run (%d)", l.compactions.Load())
	}
}

func TestAutoCompactionBySize(t *testing.T) {
	dir := natstest.TempDir(t)
	opts := Options{CompactBytes: 2048}
	l := openT(t, dir, opts)
	for i := 0; i < 300; i++ {
		claimFinish(t, l, fmt.Sprint("id-", i))
	}
	if l.compactions.Load() < 3 { // creation, then at least two automatic
		t.Fatalf("compactions = %d", l.compactions.Load())
	}
	closeT(t, l)
	l = openT(t, dir, opts)
	for i := 0; i < 300; i++ {
		mustState(t, l, fmt.Sprint("id-", i), StateFinished)
	}
}

func TestGroupCommit(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	opts := Options{commitHook: func(int) {
		once.Do(func() { close(entered); <-release })
	}}
	l := openT(t, natstest.TempDir(t), opts)
	const n = 16
	for i := 0; i < n; i++ {
		l.Claim(fmt.Sprint("g", i))
	}
	var wg sync.WaitGroup
	launch := func(i int) {
		defer wg.Done()
		if err := l.Launching(fmt.Sprint("g", i), nil); err != nil {
			t.Error(err)
		}
	}
	syncs0 := l.syncs.Load()
	wg.Add(1)
	go launch(0)
	<-entered // the committer holds g0's batch, before its write
	for i := 1; i < n; i++ {
		wg.Add(1)
		go launch(i)
	}
	waitFor(t, "the others to queue", func() bool {
		l.qmu.Lock()
		defer l.qmu.Unlock()
		return len(l.queue) == n-1
	})
	close(release)
	wg.Wait()
	if got := l.syncs.Load() - syncs0; got != 2 {
		t.Fatalf("%d launches took %d fsyncs, want 2", n, got)
	}
}

func TestWriteFailureIsSticky(t *testing.T) {
	dir := natstest.TempDir(t)
	var l *Ledger
	batches := 0
	opts := Options{commitHook: func(int) {
		if batches++; batches == 2 {
			l.f.Close() // make the second batch's write fail
		}
	}}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	claimLaunch(t, l, "a", nil)
	l.Claim("b")
	if err := l.Launching("b", nil); !errors.Is(err, ErrFailed) {
		t.Fatalf("Launching with a failing write: %v", err)
	}
	if _, _, err := l.Claim("c"); !errors.Is(err, ErrFailed) {
		t.Errorf("Claim after failure: %v", err)
	}
	if err := l.Finished("a"); !errors.Is(err, ErrFailed) {
		t.Errorf("Finished after failure: %v", err)
	}
	if err := l.Compact(); !errors.Is(err, ErrFailed) {
		t.Errorf("Compact after failure: %v", err)
	}
	l.Close() // reports closing the already closed file
	l = openT(t, dir, Options{})
	mustState(t, l, "a", StateLaunching)
	mustState(t, l, "b", StateNone)
}

func TestCloseTwice(t *testing.T) {
	l := openT(t, natstest.TempDir(t), Options{})
	claimLaunch(t, l, "a", nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	err := l.Close()
	if !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	if _, _, err := l.Claim("b"); !errors.Is(err, ErrClosed) {
		t.Errorf("Claim after Close: %v", err)
	}
	if err := l.Finished("a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Finished after Close: %v", err)
	}
	if err := l.Compact(); !errors.Is(err, ErrClosed) {
		t.Errorf("Compact after Close: %v", err)
	}
}

func TestCloseWhileWriting(t *testing.T) {
	dir := natstest.TempDir(t)
	l := openT(t, dir, Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	durable := map[string]bool{}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", g, i)
				if ok, _, err := l.Claim(id); err != nil || !ok {
					return
				}
				if err := l.Launching(id, nil); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				durable[id] = true
				mu.Unlock()
			}
		}()
	}
	waitFor(t, "some writes", func() bool { mu.Lock(); defer mu.Unlock(); return len(durable) > 20 })
	closeT(t, l)
	wg.Wait()
	l = openT(t, dir, Options{})
	for id := range durable {
		mustState(t, l, id, StateLaunching)
	}
}

func TestLocked(t *testing.T) {
	dir := natstest.TempDir(t)
	l := openT(t, dir, Options{})
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	closeT(t, l)
	l2 := openT(t, dir, Options{})
	closeT(t, l2)
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{Retention: 7 * 24 * time.Hour},
		{MaxEntries: -1},
		{CompactBytes: -1},
	} {
		if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Validate(%+v) = %v", o, err)
		}
		if _, err := Open(natstest.TempDir(t), o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Open(%+v) = %v", o, err)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero Options: %v", err)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateNone: "none", StatePending: "pending", StateLaunching: "launching", StateFinished: "finished", 9: "State(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q", s, s.String())
		}
	}
}

// The committer runs only while writes are queued; the next write starts
// it again. The periodic check compacts an idle ledger whose finished
// entries expired, and does nothing once the ledger is closed.
func TestIdleLedgerHoldsNoGoroutine(t *testing.T) {
	dir := natstest.TempDir(t)
	clk := newClock()
	opts := Options{Now: clk.Now, Retention: 30 * 24 * time.Hour}
	l := openT(t, dir, opts)
	running := func() bool {
		l.qmu.Lock()
		defer l.qmu.Unlock()
		return l.committing
	}
	if running() {
		t.Fatal("a committer runs before the first write")
	}
	for i := 0; i < 5; i++ {
		claimFinish(t, l, fmt.Sprint("a", i))
	}
	waitFor(t, "the committer to stop", func() bool { return !running() })
	claimFinish(t, l, "b")
	waitFor(t, "the committer to stop again", func() bool { return !running() })

	clk.Advance(40 * 24 * time.Hour) // every entry expired
	before := l.compactions.Load()
	l.periodicCheck()
	if n := l.compactions.Load() - before; n != 1 {
		t.Fatalf("periodic check compacted %d times, want 1", n)
	}
	mustState(t, l, "a0", StateNone)
	l.periodicCheck() // nothing due: no compaction
	if n := l.compactions.Load() - before; n != 1 {
		t.Fatalf("periodic check compacted with nothing due (%d)", n)
	}
	claimFinish(t, l, "c")
	closeT(t, l)
	l.periodicCheck() // after Close: a no-op
	l = openT(t, dir, opts)
	mustState(t, l, "c", StateFinished)
	mustState(t, l, "b", StateNone)
}
