package update_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/internal/update"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

func TestHappyPath(t *testing.T) {
	e := newEnv(t)
	e.put(t, "1.2.0", newBinary, nil, "")
	u := e.updater(t, "1.0.0", nil)

	d, err := u.Consider(context.Background(), cfg("1.2.0"))
	if d != update.DecisionUpdated || !errors.Is(err, update.ErrRestart) {
		t.Fatalf("Consider = %v, %v; want updated, ErrRestart", d, err)
	}
	var ec interface{ ExitCode() int }
	if !errors.As(err, &ec) || ec.ExitCode() != 64 {
		t.Fatalf("ErrRestart has no ExitCode() 64: %v", err)
	}
	wantFile(t, e.exe, newBinary)
	wantFile(t, e.exe+".old", oldBinary)
	e.wantNoStaging(t)
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(e.exe)
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("new exe mode %v (err %v), want 0755", fi.Mode(), err)
		}
	}

	// Attempt recorded: the same process and a fresh one both skip 1.2.0.
	if d, err := u.Consider(context.Background(), cfg("1.2.0")); d != update.DecisionAttempted || err != nil {
		t.Fatalf("second Consider = %v, %v; want attempted", d, err)
	}
	u2 := e.updater(t, "1.0.0", nil)
	if d, err := u2.Consider(context.Background(), cfg("1.2.0")); d != update.DecisionAttempted || err != nil {
		t.Fatalf("Consider after restart = %v, %v; want attempted", d, err)
	}
	// After a swap this process only asks for its restart.
	if d, err := u.Consider(context.Background(), cfg("1.3.0")); d != update.DecisionUpdated || !errors.Is(err, update.ErrRestart) {
		t.Fatalf("Consider after a swap = %v, %v; want updated, ErrRestart", d, err)
	}
	// Healthy in the process that swapped does nothing.
	if err := u.Healthy(); err != nil {
		t.Fatal(err)
	}
	wantNoFile(t, e.exe+".last-good")
}

func TestSkips(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(e.stateDir, 0o750); err != nil {
		t.Fatal(err)
	}
	st := `{"format":1,"attempt":{"version":"1.1.0","from":"1.0.0","digest":"00","at":"2026-01-01T00:00:00Z"},"quarantined":["0.9.0","1.3.0"]}`
	if err := os.WriteFile(filepath.Join(e.stateDir, update.StateFile), []byte(st), 0o600); err != nil {
		t.Fatal(err)
	}
	u := e.updater(t, "1.0.0", nil)
	if q := u.Quarantined(); len(q) != 2 || q[0] != "0.9.0" || q[1] != "1.3.0" {
		t.Fatalf("Quarantined = %v", q)
	}
	for _, tc := range []struct {
		target string
		want   update.Decision
	}{
		{"", update.DecisionNoTarget},
		{"1.0.0", update.DecisionCurrent},
		{"1.3.0", update.DecisionQuarantined},
		{"1.1.0", update.DecisionAttempted},
	} {
		t.Run(string(tc.want), func(t *testing.T) {
			// No object exists: a download would fail, so a nil error shows it was skipped.
			d, err := u.Consider(context.Background(), wire.Config{TargetVersion: tc.target, TargetVersionJitter: time.Hour})
			if d != tc.want || err != nil {
				t.Fatalf("Consider(%q) = %v, %v; want %v, nil", tc.target, d, err, tc.want)
			}
		})
	}
	wantFile(t, e.exe, oldBinary)
	if d, err := u.Consider(context.Background(), cfg("../x")); d != update.DecisionFailed || !errors.Is(err, update.ErrInvalidVersion) {
		t.Fatalf("invalid version: %v, %v", d, err)
	}
}

func TestDigestFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		digest  func(string) string
		wantErr error
	}{
		{"mismatch", func(string) string { return update.FormatDigest(sha256.Sum256([]byte("other"))) }, update.ErrDigestMismatch},
		{"missing", func(string) string { return "" }, update.ErrNoDigest},
		{"malformed", func(string) string { return "SHA-256=not-base64!" }, update.ErrBadDigest},
		{"wrong algorithm", func(d string) string { return "SHA-512=" + d[len("SHA-256="):] }, update.ErrBadDigest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.put(t, "1.2.0", newBinary, nil, "")
			e.rewriteMeta(t, "1.2.0", func(i *jetstream.ObjectInfo) { i.Digest = tc.digest(i.Digest) })
			u := e.updater(t, "1.0.0", nil)
			d, err := u.Consider(context.Background(), cfg("1.2.0"))
			if d != update.DecisionFailed || !errors.Is(err, tc.wantErr) {
				t.Fatalf("Consider = %v, %v; want failed, %v", d, err, tc.wantErr)
			}
			wantFile(t, e.exe, oldBinary)
			wantNoFile(t, e.exe+".old")
			e.wantNoStaging(t)
			// Nothing was recorded: once the release is fixed, it goes through.
			e.put(t, "1.2.0", newBinary, nil, "")
			if d, err := u.Consider(context.Background(), cfg("1.2.0")); !errors.Is(err, update.ErrRestart) {
				t.Fatalf("after fixing the release: %v, %v", d, err)
			}
			wantFile(t, e.exe, newBinary)
		})
	}
}

func TestParseDigest(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	good := update.FormatDigest(sum)
	for _, tc := range []struct {
		in      string
		wantErr error
	}{
		{good, nil},
		{good[:len(good)-1], nil}, // unpadded base64url
		{"", update.ErrNoDigest},
		{"SHA-256=", update.ErrBadDigest},
		{"sha-256=" + good[8:], update.ErrBadDigest},
		{"SHA-256=" + "AAAA", update.ErrBadDigest},
		{"SHA-256=" + good[8:] + "AAAA", update.ErrBadDigest},
	} {
		d, err := update.ParseDigest(tc.in)
		if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
			t.Errorf("ParseDigest(%q) err = %v, want %v", tc.in, err, tc.wantErr)
		}
		if err == nil && d != sum {
			t.Errorf("ParseDigest(%q) = %x, want %x", tc.in, d, sum)
		}
	}
}

func TestValidVersion(t *testing.T) {
	for _, v := range []string{"1.2.0", "v2.0.0-rc.1", "1.4.2+win_x64"} {
		if err := update.ValidVersion(v); err != nil {
			t.Errorf("ValidVersion(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"", ".", "..", "1.0/2", `1\2`, "a b", "é", string(make([]byte, 129))} {
		if err := update.ValidVersion(v); !errors.Is(err, update.ErrInvalidVersion) {
			t.Errorf("ValidVersion(%q) = %v, want ErrInvalidVersion", v, err)
		}
	}
}

func TestReleaseSize(t *testing.T) {
	e := newEnv(t)
	e.put(t, "1.2.0", newBinary, nil, "")
	if _, err := e.obs.PutBytes(context.Background(), "1.2.1", nil); err != nil {
		t.Fatal(err)
	}
	u := e.updater(t, "1.0.0", func(o *update.Options) { o.MaxSize = 1000 })
	for _, v := range []string{"1.2.0", "1.2.1"} {
		if d, err := u.Consider(context.Background(), cfg(v)); d != update.DecisionFailed || !errors.Is(err, update.ErrReleaseSize) {
			t.Fatalf("%s: %v, %v; want ErrReleaseSize", v, d, err)
		}
	}
	wantFile(t, e.exe, oldBinary)
	e.wantNoStaging(t)
}

func TestSignature(t *testing.T) {
	pub, priv := keyPair(1)
	_, otherPriv := keyPair(2)
	for _, tc := range []struct {
		name    string
		publish func(e *env)
		wantErr error
	}{
		{"unsigned", func(e *env) { e.put(t, "1.2.0", newBinary, nil, "") }, update.ErrUnsigned},
		{"unknown kid", func(e *env) { e.put(t, "1.2.0", newBinary, priv, "rel-2") }, update.ErrUnknownKid},
		{"wrong key", func(e *env) { e.put(t, "1.2.0", newBinary, otherPriv, "rel-1") }, update.ErrBadSignature},
		{"signed as another version", func(e *env) {
			e.put(t, "1.2.0", newBinary, nil, "")
			e.rewriteMeta(t, "1.2.0", func(i *jetstream.ObjectInfo) {
				i.Metadata = update.SignRelease(priv, "rel-1", "1.1.0", sha256.Sum256(newBinary), update.Flags{})
			})
		}, update.ErrBadSignature},
		{"garbled signature", func(e *env) {
			e.put(t, "1.2.0", newBinary, priv, "rel-1")
			e.rewriteMeta(t, "1.2.0", func(i *jetstream.ObjectInfo) { i.Metadata[update.MetaSig] = "!!" })
		}, update.ErrBadSignature},
		{"valid", func(e *env) { e.put(t, "1.2.0", newBinary, priv, "rel-1") }, update.ErrRestart},
		{"valid in headers", func(e *env) {
			e.put(t, "1.2.0", newBinary, nil, "")
			e.rewriteMeta(t, "1.2.0", func(i *jetstream.ObjectInfo) {
				i.Headers = map[string][]string{}
				for k, v := range update.SignRelease(priv, "rel-1", "1.2.0", sha256.Sum256(newBinary), update.Flags{}) {
					i.Headers["Kanade-Sig"+k[len("kanade-sig"):]] = []string{v}
				}
			})
		}, update.ErrRestart},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.publish(e)
			u := e.updater(t, "1.0.0", func(o *update.Options) { o.Keyring = keyring(t, "rel-1", pub) })
			d, err := u.Consider(context.Background(), cfg("1.2.0"))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Consider = %v, %v; want %v", d, err, tc.wantErr)
			}
			if tc.wantErr == update.ErrRestart {
				wantFile(t, e.exe, newBinary)
				return
			}
			if d != update.DecisionFailed {
				t.Fatalf("decision %v, want failed", d)
			}
			wantFile(t, e.exe, oldBinary)
			e.wantNoStaging(t)
		})
	}
}

func TestSwapFailureRollsBack(t *testing.T) {
	boom := errors.New("injected rename failure")
	for _, tc := range []struct {
		name  string
		setup func(e *env, u *update.Updater)
		step  string
	}{
		{"stage: a directory at exe.new", func(e *env, u *update.Updater) {
			if err := os.MkdirAll(filepath.Join(e.exe+".new", "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "stage"},
		{"aside", func(e *env, u *update.Updater) {
			update.SetRename(u, failRename(e.exe, e.exe+".old", boom))
		}, "aside"},
		{"install", func(e *env, u *update.Updater) {
			update.SetRename(u, failRename(e.exe+".new", e.exe, boom))
		}, "install"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.put(t, "1.2.0", newBinary, nil, "")
			u := e.updater(t, "1.0.0", nil)
			tc.setup(e, u)
			d, err := u.Consider(context.Background(), cfg("1.2.0"))
			var se *update.SwapError
			if d != update.DecisionFailed || !errors.As(err, &se) || !errors.Is(err, update.ErrSwap) {
				t.Fatalf("Consider = %v, %v; want failed with a SwapError", d, err)
			}
			if se.Step != tc.step || se.UndoErr != nil {
				t.Fatalf("SwapError step %q undo %v, want step %q undone", se.Step, se.UndoErr, tc.step)
			}
			wantFile(t, e.exe, oldBinary)
			if tc.step != "stage" {
				wantNoFile(t, e.exe+".new")
			}
			// Not armed, not recorded: Boot finds nothing, a retry goes through.
			if res, err := update.Boot(e.stateDir, e.exe); err != nil || res.Armed || res.Version != "" {
				t.Fatalf("Boot after a failed swap = %+v, %v", res, err)
			}
			_ = os.Remove(filepath.Join(e.exe+".new", "sub"))
			_ = os.Remove(e.exe + ".new")
			u2 := e.updater(t, "1.0.0", nil)
			if _, err := u2.Consider(context.Background(), cfg("1.2.0")); !errors.Is(err, update.ErrRestart) {
				t.Fatalf("retry: %v", err)
			}
			wantFile(t, e.exe, newBinary)
		})
	}
}

// failRename returns a rename that fails for exactly from → to.
func failRename(from, to string, err error) func(string, string) error {
	return func(o, n string) error {
		if o == from && n == to {
			return err
		}
		return fsutil.Rename(o, n)
	}
}

func TestJitter(t *testing.T) {
	e := newEnv(t)
	e.put(t, "1.2.0", newBinary, nil, "")
	const jitter = 10 * time.Minute
	var gotN int64
	u := e.updater(t, "1.0.0", func(o *update.Options) {
		o.Rand = func(n int64) int64 { gotN = n; return n - 1 }
	})
	entered := make(chan time.Duration, 1)
	update.SetSleep(u, func(ctx context.Context, d time.Duration) error {
		entered <- d
		return update.SleepCtx(ctx, d) // the real wait: 10 minutes unless cancelled
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := u.Consider(ctx, wire.Config{TargetVersion: "1.2.0", TargetVersionJitter: jitter})
		done <- err
	}()
	if d := <-entered; d != jitter {
		t.Fatalf("waited %v, want the drawn %v", d, jitter)
	}
	if gotN != int64(jitter)+1 {
		t.Fatalf("Rand(%d), want Rand(jitter+1) = %d", gotN, int64(jitter)+1)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Consider: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("jitter wait not cancelled")
	}
	wantFile(t, e.exe, oldBinary)

	// Zero jitter: no wait at all. A small draw is what is waited.
	u2 := e.updater(t, "1.0.0", func(o *update.Options) { o.Rand = func(int64) int64 { return 7 } })
	var waits []time.Duration
	update.SetSleep(u2, func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil })
	if _, err := u2.Consider(context.Background(), wire.Config{TargetVersion: "1.2.0"}); !errors.Is(err, update.ErrRestart) {
		t.Fatal(err)
	}
	if len(waits) != 0 {
		t.Fatalf("zero jitter waited %v", waits)
	}
}

func TestDownloadRetries(t *testing.T) {
	t.Run("missing object", func(t *testing.T) {
		e := newEnv(t)
		u := e.updater(t, "1.0.0", nil)
		var waits []time.Duration
		update.SetSleep(u, func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil })
		d, err := u.Consider(context.Background(), cfg("1.2.0"))
		if d != update.DecisionFailed || !errors.Is(err, update.ErrDownload) || !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Fatalf("Consider = %v, %v; want ErrDownload wrapping ErrObjectNotFound", d, err)
		}
		if len(waits) != 2 || waits[0] != time.Second || waits[1] != 2*time.Second {
			t.Fatalf("backoff waits %v, want [1s 2s] (3 attempts)", waits)
		}
		wantFile(t, e.exe, oldBinary)
		wantNoFile(t, e.exe+".old")
		e.wantNoStaging(t)
	})
	t.Run("object appears", func(t *testing.T) {
		e := newEnv(t)
		u := e.updater(t, "1.0.0", nil)
		update.SetSleep(u, func(context.Context, time.Duration) error {
			e.put(t, "1.2.0", newBinary, nil, "") // published during the first backoff
			return nil
		})
		if _, err := u.Consider(context.Background(), cfg("1.2.0")); !errors.Is(err, update.ErrRestart) {
			t.Fatalf("Consider: %v", err)
		}
		wantFile(t, e.exe, newBinary)
	})
}

func TestRunRestartsOnNewTarget(t *testing.T) {
	e := newEnv(t)
	e.put(t, "1.2.0", newBinary, nil, "")
	u := e.updater(t, "1.0.0", func(o *update.Options) { o.Rand = func(n int64) int64 { return n - 1 } })
	entered := make(chan time.Duration, 4)
	update.SetSleep(u, func(ctx context.Context, d time.Duration) error {
		entered <- d
		return update.SleepCtx(ctx, d)
	})
	done := make(chan error, 1)
	go func() { done <- u.Run(context.Background()) }()

	u.Offer(wire.Config{TargetVersion: "1.1.0", TargetVersionJitter: time.Hour})
	if d := <-entered; d != time.Hour {
		t.Fatalf("waiting %v", d)
	}
	// The same target again keeps waiting; a new one restarts the decision.
	u.Offer(wire.Config{TargetVersion: "1.1.0", TargetVersionJitter: time.Hour})
	u.Offer(wire.Config{TargetVersion: "1.2.0"})
	select {
	case err := <-done:
		if !errors.Is(err, update.ErrRestart) {
			t.Fatalf("Run = %v, want ErrRestart", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not update to the new target")
	}
	wantFile(t, e.exe, newBinary)
}

func TestRunRetriesAndStops(t *testing.T) {
	e := newEnv(t)
	retrying := make(chan struct{}, 1)
	u := e.updater(t, "1.0.0", func(o *update.Options) {
		o.Attempts = 1
		o.RetryInterval = time.Millisecond
		o.Logger = slog.New(onMessage("self-update: failed, will retry", retrying))
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	u.Offer(cfg("1.2.0")) // not published yet: fails, and is retried
	<-retrying
	e.put(t, "1.2.0", newBinary, nil, "")
	select {
	case err := <-done:
		if !errors.Is(err, update.ErrRestart) {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not retry")
	}
	wantFile(t, e.exe, newBinary)

	// Run returns ctx.Err() when stopped.
	u2 := e.updater(t, "1.2.0", nil)
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { done <- u2.Run(ctx2) }()
	u2.Offer(cfg("1.2.0"))
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped Run = %v", err)
	}
}

// onMessage is a slog handler that signals ch (without blocking) on each
// record with message msg and discards everything.
type onMessageHandler struct {
	msg string
	ch  chan<- struct{}
}

func onMessage(msg string, ch chan<- struct{}) slog.Handler { return onMessageHandler{msg, ch} }

func (h onMessageHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h onMessageHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h onMessageHandler) WithGroup(string) slog.Handler            { return h }
func (h onMessageHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
