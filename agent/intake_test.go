package agent_test

// Tests of the command intake: signature screening before the queue, the
// refusal rate limit, kills while enforcing, malformed input.

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testKey is a command signing key written to a keyring file.
type testKey struct {
	kid     string
	priv    ed25519.PrivateKey
	keyring string // the keyring file
}

// newKeyring writes a keyring file holding one new key.
func newKeyring(t *testing.T) testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(natstest.TempDir(t), "keyring.json")
	kr, _ := json.Marshal([]wire.KeyringEntry{{Kid: "k1", PublicKey: base64.StdEncoding.EncodeToString(pub)}})
	if err := os.WriteFile(path, kr, 0o600); err != nil {
		t.Fatal(err)
	}
	return testKey{kid: "k1", priv: priv, keyring: path}
}

// signedMsg returns a message on subj carrying body signed by k, bound
// to the subject signedFor.
func (k testKey) signedMsg(t *testing.T, subj, signedFor string, body []byte) *nats.Msg {
	t.Helper()
	hdr, err := signing.Sign(k.priv, k.kid, signedFor, time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Subject: subj, Data: body, Header: hdr}
}

// publishSigned publishes c on subj, signed by k.
func (e *env) publishSigned(k testKey, subj string, c wire.Command) {
	e.t.Helper()
	body, err := json.Marshal(c)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.nc.PublishMsg(k.signedMsg(e.t, subj, subj, body)); err != nil {
		e.t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
}

// TestEnforcingEmptyKeyringRefusesAll: --enforce-signatures with a keyring
// file that holds no key refuses every command (exit 123, skipped false),
// instead of running unsigned commands as if not enforcing.
func TestEnforcingEmptyKeyringRefusesAll(t *testing.T) {
	e := newEnv(t)
	keyring := filepath.Join(natstest.TempDir(t), "empty.json")
	if err := os.WriteFile(keyring, []byte("[]"), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(natstest.TempDir(t), "ran")
	e.start("pc-empty", "", func(o *agent.Options) { o.KeyringFile, o.Enforcing = keyring, true })
	c := cmd("echo ran >> " + marker)
	e.publish(pcSubject("pc-empty"), c)
	r := e.waitResult(c.RequestID, 20*time.Second)
	if r.ExitCode != wire.ExitRefused || r.Skipped || !strings.Contains(r.Stderr, "keyring is empty") || r.ManifestID != wire.AdhocID {
		t.Fatalf("result %+v, want a refusal naming the empty keyring", r)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the unsigned command ran")
	}
}

// TestRefusalFloodBounded floods an enforcing agent with thousands of
// unsigned commands from several connections while a signed command is
// sent in the middle: the signed one runs promptly, and the refusals stored
// stay within the rate limit (the rest are counted, not written).
func TestRefusalFloodBounded(t *testing.T) {
	e := newEnv(t)
	k := newKeyring(t)
	a := e.start("pc-flood", "", func(o *agent.Options) { o.KeyringFile, o.Enforcing = k.keyring, true })
	subj := pcSubject("pc-flood")
	const senders, perSender = 4, 1500
	start := time.Now()
	var wg sync.WaitGroup
	for range senders {
		nc := natstest.Connect(t, e.srv.URL())
		wg.Add(1)
		go func() {
			defer wg.Done()
			junk := cmd(noopScript)
			junk.Script = strings.Repeat("x", 2000)
			for range perSender {
				junk.RequestID = uuid.NewString()
				b, _ := json.Marshal(junk)
				if err := nc.Publish(subj, b); err != nil {
					t.Error(err)
					return
				}
			}
			if err := nc.Flush(); err != nil {
				t.Error(err)
			}
		}()
	}
	// The signed command is sent in the thick of the flood.
	natstest.CheckFor(t, 20*time.Second, time.Millisecond, func() error {
		if s := a.Stats(); s.Received+s.Dropped < 1000 {
			return fmt.Errorf("flood not under way: %+v", s)
		}
		return nil
	})
	sentAt := time.Now()
	signed := cmd(noopScript)
	e.publishSigned(k, subj, signed)
	r := e.waitResult(signed.RequestID, 20*time.Second)
	t.Logf("signed command ran %s after it was sent; stats then %+v", time.Since(sentAt), a.Stats())
	if r.ExitCode != 0 {
		t.Fatalf("signed command: %+v", r)
	}
	if took := time.Since(sentAt); took > 10*time.Second {
		t.Errorf("the signed command took %s to run during the flood", took)
	}
	wg.Wait()
	// Every flood message is handled (refused or dropped as a slow consumer).
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		s := a.Stats()
		if s.Refused+s.Dropped < senders*perSender/2 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
	s := a.Stats()
	elapsed := time.Since(start)
	// At most the burst plus one every 500 ms since the flood began, plus
	// the signed command's result and the refusals of its replayed copy.
	limit := int64(100 + 2*elapsed.Seconds() + 3)
	if s.Results > limit {
		t.Fatalf("%d results stored in %s, want at most %d: refusals not bounded (stats %+v)", s.Results, elapsed, limit, s)
	}
	if s.RefusalsDropped == 0 {
		t.Fatalf("no refusal dropped: %+v", s)
	}
}

// TestKillNeedsSignatureWhileEnforcing: while enforcing, a kill.<exec_id>
// that is unsigned, signed in upstream's unbound form, or signed for
// another subject is ignored and counted; a kill signed by a keyring key
// for its own subject stops the command.
func TestKillNeedsSignatureWhileEnforcing(t *testing.T) {
	e := newEnv(t)
	k := newKeyring(t)
	a := e.start("pc-ks", "", func(o *agent.Options) { o.KeyringFile, o.Enforcing = k.keyring, true })
	c := cmd(sleepScript(30))
	c.ExecID = "exec-ks-" + uuid.NewString()[:8]
	started, _ := subject.EventStarted(c.ExecID, "pc-ks")
	sub, err := e.nc.SubscribeSync(started)
	if err != nil {
		t.Fatal(err)
	}
	e.publishSigned(k, pcSubject("pc-ks"), c)
	if _, err := sub.NextMsg(20 * time.Second); err != nil {
		t.Fatalf("no events.started: %v", err)
	}
	ks, _ := subject.Kill(c.ExecID)
	e.publishRaw(ks, nil)
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := a.Stats().KillsRefused; n != 1 {
			return fmt.Errorf("%d kills refused", n)
		}
		return nil
	})
	if rs, _ := e.results(c.RequestID); len(rs) != 0 {
		t.Fatalf("an unsigned kill stopped the command: %+v", rs[0])
	}
	// Upstream's unbound form covers only the (empty) body, so it would
	// kill any execution: refused too.
	unbound, err := signing.SignUnbound(k.priv, k.kid, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.PublishMsg(&nats.Msg{Subject: ks, Header: unbound}); err != nil {
		t.Fatal(err)
	}
	// And a kill signed for another execution.
	other, _ := subject.Kill("exec-other")
	if err := e.nc.PublishMsg(k.signedMsg(t, ks, other, nil)); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := a.Stats().KillsRefused; n != 3 {
			return fmt.Errorf("%d kills refused", n)
		}
		return nil
	})
	if rs, _ := e.results(c.RequestID); len(rs) != 0 {
		t.Fatalf("a kill not bound to its subject stopped the command: %+v", rs[0])
	}
	if err := e.nc.PublishMsg(k.signedMsg(t, ks, ks, nil)); err != nil {
		t.Fatal(err)
	}
	r := e.waitResult(c.RequestID, 20*time.Second)
	if r.ExitCode != wire.ExitKilled || !strings.Contains(r.Stderr, "kill."+c.ExecID) {
		t.Fatalf("after a signed kill: %+v", r)
	}
}

// TestKillRightAfterStarted: a kill sent the moment events.started is seen
// stops the command; events.started carries manifest_id (adhoc-run
// included) and version, as upstream.
func TestKillRightAfterStarted(t *testing.T) {
	e := newEnv(t)
	e.start("pc-kf", "", nil)
	for i := range 5 {
		c := cmd(sleepScript(30))
		c.Version = "v" + fmt.Sprint(i)
		c.ExecID = fmt.Sprintf("exec-kf-%d-%s", i, uuid.NewString()[:8])
		started, _ := subject.EventStarted(c.ExecID, "pc-kf")
		ks, _ := subject.Kill(c.ExecID)
		evs := make(chan *wire.EventStarted, 1)
		sub, err := e.nc.Subscribe(started, func(m *nats.Msg) {
			_ = e.nc.Publish(ks, nil)
			ev, _ := wire.DecodeEventStarted(m.Data)
			evs <- ev
		})
		if err != nil {
			t.Fatal(err)
		}
		e.publish(pcSubject("pc-kf"), c)
		r := e.waitResult(c.RequestID, 20*time.Second)
		_ = sub.Unsubscribe()
		if r.ExitCode != wire.ExitKilled {
			t.Fatalf("run %d: %+v", i, r)
		}
		if ev := <-evs; ev == nil || ev.ManifestID != wire.AdhocID || ev.Version != c.Version {
			t.Fatalf("run %d: events.started %+v, want manifest_id %q and version %q", i, ev, wire.AdhocID, c.Version)
		}
	}
}

// TestScriptWinsOverScriptObject: as upstream, a command with both script
// and script_object runs the inline script.
func TestScriptWinsOverScriptObject(t *testing.T) {
	e := newEnv(t)
	e.start("pc-sw", "", nil)
	c := cmd("echo inline")
	c.ScriptObject, c.ScriptObjectSHA256 = "missing/1", strings.Repeat("ab", 32)
	e.publish(pcSubject("pc-sw"), c)
	if r := e.waitResult(c.RequestID, 20*time.Second); r.ExitCode != 0 || r.Stdout != "inline"+nl {
		t.Fatalf("%+v", r)
	}
}

// TestMalformedInputNeverCrashes feeds random bytes, random headers and
// hostile JSON to the command subjects of an agent that does not enforce
// and of one that does: neither crashes, every message is counted, and
// both still run a command afterwards.
func TestMalformedInputNeverCrashes(t *testing.T) {
	e := newEnv(t)
	k := newKeyring(t)
	plain := e.start("pc-fz", "", nil)
	enf := e.start("pc-fze", "", func(o *agent.Options) { o.KeyringFile, o.Enforcing = k.keyring, true })
	rng := rand.New(rand.NewPCG(1, 2))
	hostile := []string{
		``, `null`, `[]`, `"x"`, `1e999`, `{`, `{"request_id":`, `{"request_id":5}`,
		`{"request_id":"a.b"}`, `{"request_id":"ok","shell":"sh"}`, `{"request_id":"` + strings.Repeat("r", 5000) + `"}`,
		strings.Repeat("[", 100000), `{"request_id":"x","timeout_secs":"NaN"}`, "\xff\xfe\x00{}",
		`{"request_id":"` + uuid.NewString() + `","shell":"sh","script":"true","deadline_at":"yesterday"}`,
	}
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	printable := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('!' + rng.IntN(94))
		}
		return string(b)
	}
	letters := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('A' + rng.IntN(26))
		}
		return string(b)
	}
	sent := 0
	for i := range 400 {
		var data []byte
		if i < len(hostile) {
			data = []byte(hostile[i])
		} else {
			data = randBytes(rng.IntN(3000))
		}
		for _, pc := range []string{"pc-fz", "pc-fze"} {
			m := &nats.Msg{Subject: pcSubject(pc), Data: data, Header: nats.Header{}}
			switch i % 4 {
			case 1:
				m.Header.Set(signing.HeaderSig, printable(rng.IntN(120)))
				m.Header.Set(signing.HeaderKid, printable(rng.IntN(80)))
				m.Header.Set(signing.HeaderAt, printable(rng.IntN(25)))
			case 2:
				m.Header.Set(signing.HeaderSig, base64.StdEncoding.EncodeToString(randBytes(64)))
				m.Header.Set(signing.HeaderKid, "k1")
				m.Header.Set(signing.HeaderAlg, signing.AlgEd25519)
				m.Header.Set(signing.HeaderAt, fmt.Sprint(time.Now().UnixMilli()))
			case 3:
				m.Header.Set("X-"+letters(1+rng.IntN(20)), printable(rng.IntN(200)))
			}
			if err := e.nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*running{plain, enf} {
		natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			if s := a.Stats(); s.Received+s.Dropped < int64(sent/2) {
				return fmt.Errorf("%s: %+v", a.PcID(), s)
			}
			return nil
		})
	}
	if s := plain.Stats(); s.Malformed < int64(sent/2)-5 {
		t.Fatalf("non-enforcing agent counted %d malformed of %d: %+v", s.Malformed, sent/2, s)
	}
	if s := enf.Stats(); s.Refused < int64(sent/2)-5 {
		t.Fatalf("enforcing agent refused %d of %d: %+v", s.Refused, sent/2, s)
	}
	after := cmd(noopScript)
	e.publish(pcSubject("pc-fz"), after)
	if r := e.waitResult(after.RequestID, 20*time.Second); r.ExitCode != 0 {
		t.Fatalf("after the garbage: %+v", r)
	}
	signed := cmd(noopScript)
	e.publishSigned(k, pcSubject("pc-fze"), signed)
	if r := e.waitResult(signed.RequestID, 20*time.Second); r.ExitCode != 0 {
		t.Fatalf("enforcing agent after the garbage: %+v", r)
	}
}

// TestMisaddressedSignatureRefused: a command signed for commands.pc.A and
// published onto commands.pc.B is refused with 123 by B, whether B gets it
// from the EXEC replay (published while B was away) or live; A never sees it.
func TestMisaddressedSignatureRefused(t *testing.T) {
	e := newEnv(t)
	k := newKeyring(t)
	enforce := func(o *agent.Options) { o.KeyringFile, o.Enforcing = k.keyring, true }
	replayed := cmd(noopScript)
	body, _ := json.Marshal(replayed)
	if err := e.nc.PublishMsg(k.signedMsg(t, pcSubject("pc-b"), pcSubject("pc-a"), body)); err != nil {
		t.Fatal(err)
	}
	a := e.start("pc-a", "", enforce)
	b := e.start("pc-b", "", enforce)
	check := func(c wire.Command) {
		t.Helper()
		r := e.waitResult(c.RequestID, 20*time.Second)
		if r.ExitCode != wire.ExitRefused || r.Skipped || r.PcID != "pc-b" || !strings.Contains(r.Stderr, "misaddressed") || r.ManifestID != wire.AdhocID {
			t.Fatalf("result %+v, want pc-b's refusal as misaddressed", r)
		}
	}
	// (Before anything else is published on the subject: EXEC keeps only
	// the last message of each subject.)
	check(replayed)
	live := cmd(noopScript)
	body, _ = json.Marshal(live)
	if err := e.nc.PublishMsg(k.signedMsg(t, pcSubject("pc-b"), pcSubject("pc-a"), body)); err != nil {
		t.Fatal(err)
	}
	check(live)
	// Signed for its own subject, the same kind of command runs on B.
	ok := cmd(noopScript)
	e.publishSigned(k, pcSubject("pc-b"), ok)
	if r := e.waitResult(ok.RequestID, 20*time.Second); r.ExitCode != 0 || r.PcID != "pc-b" {
		t.Fatalf("well-addressed command: %+v", r)
	}
	if s := a.Stats(); s.Received != 0 {
		t.Fatalf("pc-a received %d commands: %+v", s.Received, s)
	}
	if s := b.Stats(); s.Refused < 2 {
		t.Fatalf("pc-b refused %d: %+v", s.Refused, s)
	}
}

// obsEvents returns the ObsEvents stored for pc so far.
func (e *env) obsEvents(pc string) ([]wire.ObsEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, subject.StreamObs)
	if err != nil {
		return nil, err
	}
	subj, _ := subject.Obs(pc)
	var out []wire.ObsEvent
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		ev, err := wire.DecodeObsEvent(m.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, *ev)
		seq = m.Sequence + 1
	}
}

// TestSignatureEvents: an enforcing agent reports signature outcomes with
// upstream's kinds on change only (command_signature_absent, then
// command_signature_ok), with event_record_id "<kind>:<unix ms>", and
// every use of an audit_every_use key as command_signature_audit.
func TestSignatureEvents(t *testing.T) {
	e := newEnv(t)
	pub, priv, _ := ed25519.GenerateKey(nil)
	keyring := filepath.Join(natstest.TempDir(t), "keyring.json")
	kr, _ := json.Marshal([]wire.KeyringEntry{{Kid: "audited", PublicKey: base64.StdEncoding.EncodeToString(pub), AuditEveryUse: true}})
	if err := os.WriteFile(keyring, kr, 0o600); err != nil {
		t.Fatal(err)
	}
	k := testKey{kid: "audited", priv: priv, keyring: keyring}
	e.start("pc-ev", "", func(o *agent.Options) { o.KeyringFile, o.Enforcing = keyring, true })
	var last wire.Command
	for range 2 {
		last = cmd(noopScript)
		e.publish(pcSubject("pc-ev"), last)
		e.waitResult(last.RequestID, 20*time.Second)
	}
	for range 2 {
		last = cmd(noopScript)
		e.publishSigned(k, pcSubject("pc-ev"), last)
		if r := e.waitResult(last.RequestID, 20*time.Second); r.ExitCode != 0 {
			t.Fatalf("signed: %+v", r)
		}
	}
	var kinds []string
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		evs, err := e.obsEvents("pc-ev")
		if err != nil {
			return err
		}
		kinds = nil
		for _, ev := range evs {
			if !strings.HasPrefix(ev.Kind, signing.KindPrefix) {
				continue
			}
			if ev.Source != wire.SourceCommandSign || !strings.HasPrefix(ev.EventRecordID, ev.Kind+":") {
				return fmt.Errorf("event %+v", ev)
			}
			kinds = append(kinds, ev.Kind)
		}
		if len(kinds) < 4 {
			return fmt.Errorf("signature events %v", kinds)
		}
		return nil
	})
	// The audit of a use may be stored before or after the outcome change
	// it comes with; each use is audited once per delivery (live, replay).
	want := map[string]int{"command_signature_absent": 1, "command_signature_ok": 1}
	got := map[string]int{}
	for _, k := range kinds {
		got[k]++
	}
	if got["command_signature_absent"] != want["command_signature_absent"] || got["command_signature_ok"] != want["command_signature_ok"] ||
		got[signing.KindAudit] < 2 || len(got) != 3 {
		t.Fatalf("signature events %v", kinds)
	}
}
