//go:build unix

package agent_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

func TestScriptObject(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	store, err := e.js.ObjectStore(ctx, subject.ObjectScripts)
	if err != nil {
		t.Fatal(err)
	}
	script := "echo from-object-store"
	if _, err := store.PutString(ctx, "inv/3", script); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(script))
	e.start("pc-o", "", nil)

	good := cmd("")
	good.Script, good.ScriptObject, good.ScriptObjectSHA256 = "", "inv/3", hex.EncodeToString(sum[:])
	e.publish(pcSubject("pc-o"), good)
	if r := e.waitResult(good.RequestID, 20*time.Second); r.ExitCode != 0 || r.Stdout != "from-object-store\n" {
		t.Fatalf("good object: %+v", r)
	}
	bad := good
	bad.RequestID = "bad-sha-" + good.RequestID
	bad.ScriptObjectSHA256 = strings.Repeat("0", 64)
	e.publish(pcSubject("pc-o"), bad)
	if r := e.waitResult(bad.RequestID, 20*time.Second); r.ExitCode != wire.ExitKilled || !strings.Contains(r.Stderr, "does not match") {
		t.Fatalf("bad sha: %+v", r)
	}
	missing := good
	missing.RequestID = "missing-" + good.RequestID
	missing.ScriptObject = "nope/1"
	// Another digest: the script cache (keyed by SHA-256, as upstream's)
	// would answer for the known one without reading the store.
	other := sha256.Sum256([]byte("not cached"))
	missing.ScriptObjectSHA256 = hex.EncodeToString(other[:])
	e.publish(pcSubject("pc-o"), missing)
	if r := e.waitResult(missing.RequestID, 20*time.Second); r.ExitCode != wire.ExitKilled || !strings.Contains(r.Stderr, "nope/1") {
		t.Fatalf("missing object: %+v", r)
	}
}

func TestRetry(t *testing.T) {
	e := newEnv(t)
	e.start("pc-r", "", nil)
	marker := filepath.Join(natstest.TempDir(t), "tries")
	c := cmd("echo try >> " + marker + "; exit 4")
	c.Retry = &wire.Retry{Max: 2, BackoffSecs: 0}
	e.publish(pcSubject("pc-r"), c)
	r := e.waitResult(c.RequestID, 20*time.Second)
	if r.ExitCode != 4 || countLines(t, marker) != 3 || !strings.Contains(r.Stderr, "attempt 2 of 3") {
		t.Fatalf("retry: %+v, %d tries", r, countLines(t, marker))
	}
	// A success stops the retries.
	ok := cmd("echo try >> " + marker + "-ok")
	ok.Retry = &wire.Retry{Max: 5}
	e.publish(pcSubject("pc-r"), ok)
	if r := e.waitResult(ok.RequestID, 20*time.Second); r.ExitCode != 0 || countLines(t, marker+"-ok") != 1 {
		t.Fatalf("retry after success: %+v", r)
	}
}

func TestShutdownKillsAndRecords(t *testing.T) {
	e := newEnv(t)
	a := e.start("pc-sd", "", nil)
	c := cmd("sleep 300")
	c.ExecID = "exec-sd"
	e.publish(pcSubject("pc-sd"), c)
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		s, _ := e.js.Stream(context.Background(), subject.StreamEvents)
		_, err := s.GetLastMsgForSubject(context.Background(), "events.started.exec-sd.pc-sd")
		return err
	})
	start := time.Now()
	a.stop(t)
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("stop took %v", d)
	}
	// Recorded and flushed during the stop.
	rs, err := e.results(c.RequestID)
	if err != nil || len(rs) != 1 || rs[0].ExitCode != wire.ExitKilled || !strings.Contains(rs[0].Stderr, "shutting down") {
		t.Fatalf("results %+v (err %v)", rs, err)
	}
}

func TestBrokerDownThenBack(t *testing.T) {
	e := newEnv(t)
	e.start("pc-bd", "", noFloors)
	hb := make(chan time.Time, 256)
	sub, err := e.nc.Subscribe("heartbeat.pc-bd", func(m *nats.Msg) {
		if h, err := wire.DecodeHeartbeat(m.Data); err == nil {
			hb <- h.At
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	e.kvPut(subject.BucketConfig, "global", wire.ConfigScope{HeartbeatInterval: ptr("50ms")})
	select {
	case <-hb:
	case <-time.After(10 * time.Second):
		t.Fatal("no heartbeat")
	}
	// A command that finishes while the broker is down.
	marker := filepath.Join(natstest.TempDir(t), "go")
	c := cmd("while [ ! -e " + marker + " ]; do sleep 0.05; done; echo done")
	e.publish(pcSubject("pc-bd"), c)
	e.srv.Shutdown()
	down := time.Now()
	if err := touch(marker); err != nil {
		t.Fatal(err)
	}
	// The outage itself (not a wait for a condition): heartbeats fall due
	// every 50 ms during it and must not be queued for later.
	time.Sleep(time.Second)
	up := time.Now()
	e.srv.Start()
	r := e.waitResult(c.RequestID, 30*time.Second)
	if r.ExitCode != 0 || r.Stdout != "done\n" {
		t.Fatalf("result after outage: %+v", r)
	}
	// Heartbeats resume; none made during the outage is delivered late.
	fresh := 0
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		for {
			select {
			case at := <-hb:
				if at.After(down.Add(300*time.Millisecond)) && at.Before(up) {
					t.Fatalf("heartbeat made during the outage (at %v) was delivered after it", at)
				}
				if at.After(up) {
					fresh++
				}
			default:
				if fresh < 3 {
					return fmt.Errorf("%d fresh heartbeats", fresh)
				}
				return nil
			}
		}
	})
}

func TestHostPerf(t *testing.T) {
	e := newEnv(t)
	e.kvPut(subject.BucketConfig, "global", wire.ConfigScope{HostPerfInterval: ptr("100ms")})
	got := make(chan *wire.HostPerf, 16)
	sub, err := e.nc.Subscribe("host_perf.pc-hp", func(m *nats.Msg) {
		if h, err := wire.DecodeHostPerf(m.Data); err == nil {
			select {
			case got <- h:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	e.start("pc-hp", "", nil)
	select {
	case h := <-got:
		if h.PcID != "pc-hp" || h.CPUCount < 1 || h.MemTotalBytes == 0 {
			t.Fatalf("host perf %+v", h)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no host_perf")
	}
}

func touch(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return f.Close()
}
