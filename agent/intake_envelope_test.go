package agent_test

// Tests of upstream's v2 command envelope at the intake.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// envelope returns upstream's v2 envelope body around c.
func envelope(t *testing.T, kind, target string, expires time.Time, c wire.Command) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"kind": kind, "target_pc_id": target,
		"expires_at": expires.UTC().Format(time.RFC3339Nano), "command": c,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publishEnvelope publishes body on subj signed by k at signedAt in the
// upstream header form (the signature covers the body alone).
func (e *env) publishEnvelope(k testKey, subj string, signedAt time.Time, body []byte) {
	e.t.Helper()
	hdr, err := signing.SignUnbound(k.priv, k.kid, signedAt, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.nc.PublishMsg(&nats.Msg{Subject: subj, Data: body, Header: hdr}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
}

// markerScript appends a line to path.
func markerScript(path string) string { return "echo ran >> " + path }

// sigKinds returns the command_signature_* event kinds stored for pc.
func (e *env) sigKinds(pc string) ([]string, error) {
	evs, err := e.obsEvents(pc)
	if err != nil {
		return nil, err
	}
	var kinds []string
	for _, ev := range evs {
		if strings.HasPrefix(ev.Kind, signing.KindPrefix) {
			kinds = append(kinds, ev.Kind)
		}
	}
	return kinds, nil
}

// startEnvAgent starts a non-enforcing agent pc that holds k's key.
func (e *env) startEnvAgent(pc string, k testKey) *running {
	return e.start(pc, "", func(o *agent.Options) { o.KeyringFile = k.keyring })
}

// waitSigKinds waits until every kind of want was reported for pc and
// checks that no other signature kind was. Outcomes are reported on
// change, refusals off the intake goroutine, and replayed copies may
// report a change again, so the order is not fixed.
func (e *env) waitSigKinds(pc string, want ...string) {
	e.t.Helper()
	var kinds []string
	got := map[string]bool{}
	natstest.CheckFor(e.t, 20*time.Second, 50*time.Millisecond, func() error {
		var err error
		if kinds, err = e.sigKinds(pc); err != nil {
			return err
		}
		got = map[string]bool{}
		for _, k := range kinds {
			got[k] = true
		}
		for _, w := range want {
			if !got[w] {
				return fmt.Errorf("signature events %v, want each of %v", kinds, want)
			}
		}
		return nil
	})
	if len(got) != len(want) {
		e.t.Fatalf("signature events %v, want only %v", kinds, want)
	}
}

// TestCommandEnvelopeRuns: an agent that does not enforce runs the command
// of a verified upstream v2 envelope addressed to it (exit 0, reported as
// command_signature_ok), and a bare unsigned command as before.
func TestCommandEnvelopeRuns(t *testing.T) {
	e := newEnv(t)
	k := newKeyring(t)
	const pc = "pc-env"
	e.startEnvAgent(pc, k)
	subj := pcSubject(pc)
	now := time.Now()
	ok := cmd("echo enveloped")
	e.publishEnvelope(k, subj, now, envelope(t, signing.EnvelopeKindV2, pc, now.Add(time.Hour), ok))
	r := e.waitResult(ok.RequestID, 20*time.Second)
	if r.ExitCode != 0 || r.PcID != pc || !strings.Contains(r.Stdout, "enveloped") {
		t.Fatalf("valid envelope: result %+v", r)
	}
	bare := cmd("echo bare")
	e.publish(subj, bare)
	if r := e.waitResult(bare.RequestID, 20*time.Second); r.ExitCode != 0 || !strings.Contains(r.Stdout, "bare") {
		t.Fatalf("bare command: result %+v", r)
	}
	e.waitSigKinds(pc, "command_signature_ok", "command_signature_absent")
}

// TestCommandEnvelopeRefused: an envelope addressed to another pc, or
// expired, does not run and publishes no result (as upstream: the agent
// may never have been its recipient), whether or not the agent enforces;
// only the command_signature_misaddressed / _expired event is reported.
func TestCommandEnvelopeRefused(t *testing.T) {
	e := newEnv(t)
	k := newKeyring(t)
	const pc = "pc-envref"
	a := e.startEnvAgent(pc, k)
	subj := pcSubject(pc)
	dir := natstest.TempDir(t)
	misMarker := filepath.Join(dir, "mis")
	mis := cmd(markerScript(misMarker))
	e.publishEnvelope(k, subj, time.Now(), envelope(t, signing.EnvelopeKindV2, "pc-other", time.Now().Add(time.Hour), mis))
	expMarker := filepath.Join(dir, "exp")
	exp := cmd(markerScript(expMarker))
	signed := time.Now().Add(-time.Minute)
	e.publishEnvelope(k, subj, signed, envelope(t, signing.EnvelopeKindV2, pc, signed.Add(30*time.Second), exp))
	// The intake is in order: once a later command's result is in, the
	// envelopes before it have been dealt with.
	after := cmd(noopScript)
	e.publish(subj, after)
	e.waitResult(after.RequestID, 20*time.Second)
	e.waitSigKinds(pc, "command_signature_misaddressed", "command_signature_expired", "command_signature_absent")
	for _, c := range []wire.Command{mis, exp} {
		if rs, err := e.results(c.RequestID); err != nil || len(rs) != 0 {
			t.Fatalf("refused envelope: results %+v, %v; want none", rs, err)
		}
	}
	for _, m := range []string{misMarker, expMarker} {
		if _, err := os.Stat(m); err == nil {
			t.Fatalf("%s: a refused envelope ran", filepath.Base(m))
		}
	}
	// Each was delivered live and may be again by the EXEC replay.
	if s := a.Stats(); s.Refused < 2 || s.Results != 1 {
		t.Fatalf("stats %+v, want 2 refused and 1 result", s)
	}
}

// TestCommandEnvelopeUnknownKind: a payload with a "kind" other than
// kanade.command.v2 is dropped as malformed, with neither result nor
// signature event, even when it also carries a bare command's fields (it
// must never be run as a bare command).
func TestCommandEnvelopeUnknownKind(t *testing.T) {
	e := newEnv(t)
	k := newKeyring(t)
	const pc = "pc-envunk"
	a := e.startEnvAgent(pc, k)
	subj := pcSubject(pc)
	marker := filepath.Join(natstest.TempDir(t), "unk")
	unk := cmd(markerScript(marker))
	fields := map[string]any{}
	b, _ := json.Marshal(unk)
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	fields["kind"] = "kanade.command.v3"
	fields["target_pc_id"] = pc
	b, _ = json.Marshal(fields)
	e.publishEnvelope(k, subj, time.Now(), b)
	after := cmd(noopScript)
	e.publish(subj, after)
	e.waitResult(after.RequestID, 20*time.Second)
	e.waitSigKinds(pc, "command_signature_absent")
	if rs, err := e.results(unk.RequestID); err != nil || len(rs) != 0 {
		t.Fatalf("unknown kind: results %+v, %v; want none", rs, err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a payload of an unknown kind ran")
	}
	if s := a.Stats(); s.Malformed < 1 {
		t.Fatalf("stats %+v, want the unknown kind counted malformed", s)
	}
}

// TestCommandEnvelopeStartDeadline: the envelope's expires_at is the start
// deadline: an envelope that verified on arrival but waits in the local
// queue past it is skipped with 125 and does not run, although its command
// has no deadline_at of its own.
func TestCommandEnvelopeStartDeadline(t *testing.T) {
	e := newEnv(t)
	k := newKeyring(t)
	const pc = "pc-envdl"
	e.start(pc, "", func(o *agent.Options) {
		o.KeyringFile = k.keyring
		d := wire.DefaultConfig(runtime.NumCPU())
		d.Floors = wire.Floors{}
		d.MaxLocalConcurrent = 1
		o.Defaults = &d
	})
	subj := pcSubject(pc)
	busy := cmd(sleepScript(4))
	e.publish(subj, busy)
	marker := filepath.Join(natstest.TempDir(t), "ran")
	late := cmd(markerScript(marker))
	now := time.Now()
	e.publishEnvelope(k, subj, now, envelope(t, signing.EnvelopeKindV2, pc, now.Add(1500*time.Millisecond), late))
	r := e.waitResult(late.RequestID, 30*time.Second)
	if r.ExitCode != wire.ExitDeadline || !r.Skipped {
		t.Fatalf("result %+v, want a 125 skip", r)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran after its envelope expired")
	}
	if r := e.waitResult(busy.RequestID, 30*time.Second); r.ExitCode != 0 {
		t.Fatalf("busy command: %+v", r)
	}
}
