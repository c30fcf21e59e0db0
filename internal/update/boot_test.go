package update_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/update"
	"github.com/kanade/kanade-agent/wire"
)

// swapTo publishes version with data and runs a successful update from the
// version cur.
func (e *env) swapTo(t *testing.T, cur, version string, data []byte) {
	t.Helper()
	e.put(t, version, data, nil, "")
	u := e.updater(t, cur, nil)
	if _, err := u.Consider(context.Background(), cfg(version)); !errors.Is(err, update.ErrRestart) {
		t.Fatalf("update %s → %s: %v", cur, version, err)
	}
}

func boot(t *testing.T, e *env) (update.BootResult, error) {
	t.Helper()
	return update.Boot(e.stateDir, e.exe)
}

func TestBootNothingArmed(t *testing.T) {
	e := newEnv(t)
	// Strays of an interrupted download and swap are swept.
	for _, p := range []string{e.exe + ".staging-123", e.exe + ".new"} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := boot(t, e)
	if err != nil || res.Armed || res.Version != "" || len(res.Swept) != 2 {
		t.Fatalf("Boot = %+v, %v", res, err)
	}
	e.wantNoStaging(t)
	wantFile(t, e.exe, oldBinary)
}

func TestBootSentinelRollsBackToOld(t *testing.T) {
	// A fresh install: no .last-good yet, so the 4th boot restores .old.
	e := newEnv(t)
	e.swapTo(t, "1.0.0", "1.2.0", newBinary)
	for i := 1; i <= update.MaxTrialBoots; i++ {
		res, err := boot(t, e)
		if err != nil || !res.Armed || res.Boots != i || res.Version != "1.2.0" || res.From != "1.0.0" {
			t.Fatalf("boot %d: %+v, %v", i, res, err)
		}
		wantFile(t, e.exe, newBinary)
	}
	res, err := boot(t, e)
	if !errors.Is(err, update.ErrRestart) || !res.RolledBack || res.Armed || res.Quarantined != "1.2.0" || res.RestoredFrom != e.exe+".old" {
		t.Fatalf("4th boot: %+v, %v; want a rollback from .old and ErrRestart", res, err)
	}
	wantFile(t, e.exe, oldBinary)
	wantFile(t, e.exe+".failed", newBinary)
	e.wantNoStaging(t)

	// Disarmed: the next boot does nothing. The restored process reports
	// the quarantine, both events, and skips 1.2.0 from now on.
	if res, err := boot(t, e); err != nil || res.Armed || res.RolledBack {
		t.Fatalf("5th boot: %+v, %v", res, err)
	}
	u := e.updater(t, "1.0.0", nil)
	if q := u.Quarantined(); len(q) != 1 || q[0] != "1.2.0" {
		t.Fatalf("Quarantined = %v", q)
	}
	if d, err := u.Consider(context.Background(), cfg("1.2.0")); d != update.DecisionQuarantined || err != nil {
		t.Fatalf("Consider quarantined: %v, %v", d, err)
	}
	evs := u.PendingEvents()
	if len(evs) != 2 {
		t.Fatalf("pending events %d, want update + rollback", len(evs))
	}
	wantPayload(t, evs[0], update.UpdatePayload{From: "1.0.0", To: "1.2.0"})
	wantPayload(t, evs[1], update.UpdatePayload{From: "1.2.0", To: "1.0.0", RolledBack: true})
}

func TestBootSentinelRollsBackToLastGood(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tamper     bool // garble .last-good: its recorded digest no longer matches
		wantFrom   string
		wantBinary []byte
	}{
		{"last-good", false, ".last-good", oldBinary},
		{"last-good tampered, .old used", true, ".old", []byte("the .old binary")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			// 1.0.0 runs healthily: .last-good is written.
			u0 := e.updater(t, "1.0.0", nil)
			if err := u0.Healthy(); err != nil {
				t.Fatal(err)
			}
			wantFile(t, e.exe+".last-good", oldBinary)
			e.swapTo(t, "1.0.0", "1.2.0", newBinary)
			if err := os.WriteFile(e.exe+".old", []byte("the .old binary"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.tamper {
				if err := os.WriteFile(e.exe+".last-good", []byte("garbled"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < update.MaxTrialBoots; i++ {
				if _, err := boot(t, e); err != nil {
					t.Fatal(err)
				}
			}
			res, err := boot(t, e)
			if !errors.Is(err, update.ErrRestart) || res.RestoredFrom != e.exe+tc.wantFrom {
				t.Fatalf("4th boot: %+v, %v; want restore from %s", res, err, tc.wantFrom)
			}
			if tc.tamper != (len(res.Problems) == 1) {
				t.Fatalf("problems %v", res.Problems)
			}
			wantFile(t, e.exe, tc.wantBinary)
		})
	}
}

func TestBootNoFallback(t *testing.T) {
	e := newEnv(t)
	e.swapTo(t, "1.0.0", "1.2.0", newBinary)
	if err := os.Remove(e.exe + ".old"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < update.MaxTrialBoots; i++ {
		if _, err := boot(t, e); err != nil {
			t.Fatal(err)
		}
	}
	res, err := boot(t, e)
	if !errors.Is(err, update.ErrNoFallback) || errors.Is(err, update.ErrRestart) || res.Quarantined != "1.2.0" {
		t.Fatalf("4th boot: %+v, %v; want ErrNoFallback", res, err)
	}
	wantFile(t, e.exe, newBinary)
	if res, err := boot(t, e); err != nil || res.Armed {
		t.Fatalf("after no fallback: %+v, %v; want disarmed", res, err)
	}
}

func TestHealthy(t *testing.T) {
	e := newEnv(t)
	e.swapTo(t, "1.0.0", "1.2.0", newBinary)
	if res, err := boot(t, e); err != nil || !res.Armed || res.Boots != 1 {
		t.Fatalf("boot: %+v, %v", res, err)
	}
	u := e.updater(t, "1.2.0", nil) // the new process
	if err := u.Healthy(); err != nil {
		t.Fatal(err)
	}
	wantFile(t, e.exe+".last-good", newBinary)
	if lg := e.stateJSON(t)["last_good"].(map[string]any); lg["version"] != "1.2.0" {
		t.Fatalf("last_good %v", lg)
	}
	// Disarmed: boots are no longer counted, nothing is rolled back.
	for i := 0; i < update.MaxTrialBoots+2; i++ {
		if res, err := boot(t, e); err != nil || res.Armed || res.RolledBack {
			t.Fatalf("boot after Healthy: %+v, %v", res, err)
		}
	}
	// Idempotent.
	if err := u.Healthy(); err != nil {
		t.Fatal(err)
	}
	wantFile(t, e.exe+".last-good", newBinary)
	e.wantNoStaging(t)
}

func TestBootAbandonsAnIncompleteSwap(t *testing.T) {
	// The state was armed but the power failed before the binary was in
	// place: the executable is still the old one.
	e := newEnv(t)
	e.swapTo(t, "1.0.0", "1.2.0", newBinary)
	if err := os.Rename(e.exe+".old", e.exe); err != nil {
		t.Fatal(err)
	}
	res, err := boot(t, e)
	if err != nil || !res.Abandoned || res.Armed {
		t.Fatalf("Boot = %+v, %v; want abandoned", res, err)
	}
	u := e.updater(t, "1.0.0", nil)
	if evs := u.PendingEvents(); len(evs) != 0 {
		t.Fatalf("events of an update that never happened: %v", evs)
	}
	// The attempt is forgotten: the update is tried again.
	if _, err := u.Consider(context.Background(), cfg("1.2.0")); !errors.Is(err, update.ErrRestart) {
		t.Fatalf("retry: %v", err)
	}
	wantFile(t, e.exe, newBinary)
}

func TestBootFinishesAnInterruptedRollback(t *testing.T) {
	// The 4th boot wrote phase rollback and restored the binary, then the
	// power failed before the state was finished.
	e := newEnv(t)
	e.swapTo(t, "1.0.0", "1.2.0", newBinary)
	p := filepath.Join(e.stateDir, update.StateFile)
	b := strings.Replace(string(readFile(t, p)), `"phase": "armed"`, `"phase": "rollback"`, 1)
	if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(e.exe+".old", e.exe); err != nil {
		t.Fatal(err)
	}
	res, err := boot(t, e)
	if !errors.Is(err, update.ErrRestart) || !res.RolledBack || res.RestoredFrom != e.exe {
		t.Fatalf("Boot = %+v, %v", res, err)
	}
	wantFile(t, e.exe, oldBinary)
	if res, err := boot(t, e); err != nil || res.Armed || res.RolledBack {
		t.Fatalf("next boot: %+v, %v", res, err)
	}
}

func TestPendingEvent(t *testing.T) {
	e := newEnv(t)
	e.swapTo(t, "1.0.0", "1.2.0", newBinary)
	if _, err := boot(t, e); err != nil {
		t.Fatal(err)
	}
	u := e.updater(t, "1.2.0", nil)
	evs := u.PendingEvents()
	if len(evs) != 1 {
		t.Fatalf("pending events %v", evs)
	}
	ev := evs[0]
	if ev.Kind != wire.KindAgentUpdate || ev.Source != wire.SourceSelfUpdate || ev.EventRecordID == "" || ev.At.IsZero() {
		t.Fatalf("event %+v", ev)
	}
	wantPayload(t, ev, update.UpdatePayload{From: "1.0.0", To: "1.2.0"})
	ev.PcID = "pc1"
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	// Not recorded yet: a restart hands out the same event again.
	if again := e.updater(t, "1.2.0", nil).PendingEvents(); len(again) != 1 || again[0].EventRecordID != ev.EventRecordID {
		t.Fatalf("after restart: %v", again)
	}
	if err := u.EventRecorded(ev); err != nil {
		t.Fatal(err)
	}
	if evs := u.PendingEvents(); len(evs) != 0 {
		t.Fatalf("after EventRecorded: %v", evs)
	}
	if evs := e.updater(t, "1.2.0", nil).PendingEvents(); len(evs) != 0 {
		t.Fatalf("EventRecorded not durable: %v", evs)
	}
}

func TestCorruptState(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(e.stateDir, 0o750); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.stateDir, update.StateFile)
	if err := os.WriteFile(p, []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".tmp-123", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := boot(t, e)
	var ce *update.CorruptStateError
	if !errors.As(err, &ce) || ce.MovedTo == "" || res.Armed {
		t.Fatalf("Boot = %+v, %v; want a CorruptStateError", res, err)
	}
	wantFile(t, ce.MovedTo, []byte("{garbage"))
	wantNoFile(t, p+".tmp-123")
	u := e.updater(t, "1.0.0", nil)
	if q := u.Quarantined(); len(q) != 0 {
		t.Fatalf("Quarantined %v", q)
	}
}

func wantPayload(t *testing.T, ev wire.ObsEvent, want update.UpdatePayload) {
	t.Helper()
	var got update.UpdatePayload
	if err := json.Unmarshal(ev.Payload, &got); err != nil || got != want {
		t.Fatalf("payload %s (err %v), want %+v", ev.Payload, err, want)
	}
}
