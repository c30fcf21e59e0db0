package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestRetryWokenByConnect: a (re)connect cuts retry's backoff short and
// starts it over, so what waited on the broker (the infrastructure check,
// the EXEC consumer) does not sit out a backoff grown while offline. The
// fourth attempt would come at least 3 s after the third (backoff 4 s
// ± 25 %); the connect must bring it at once.
func TestRetryWokenByConnect(t *testing.T) {
	a := &Agent{log: slog.New(slog.DiscardHandler)}
	var calls atomic.Int32
	third := make(chan time.Time, 1)
	fourth := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- a.retry(ctx, "test", func(context.Context) error {
			switch calls.Add(1) {
			case 3:
				third <- time.Now()
			case 4:
				fourth <- time.Now()
				return nil
			}
			return errors.New("broker away")
		})
	}()
	select {
	case <-third:
	case <-time.After(20 * time.Second):
		t.Fatal("no third attempt within 20 s")
	}
	// The third attempt has failed (or is failing): fire until the fourth
	// comes, as a connect happening any time during the wait would.
	fired := time.Now()
	var got time.Time
	for got.IsZero() {
		a.connected.fire()
		select {
		case got = <-fourth:
		case <-time.After(10 * time.Millisecond):
		}
	}
	if d := got.Sub(fired); d >= 3*time.Second {
		t.Fatalf("fourth attempt %v after the connect; the backoff was not cut short", d)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
