package agent

import (
	"context"
	"testing"
	"time"
)

func TestLimiterFIFO(t *testing.T) {
	l := newLimiter(1)
	if err := l.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 5)
	for i := range 5 {
		go func() {
			if err := l.acquire(context.Background()); err != nil {
				t.Error(err)
				return
			}
			order <- i
			l.release()
		}()
		// Wait until waiter i is queued so arrival order is known.
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, q := l.stats(); q == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("waiter not queued")
			}
			time.Sleep(time.Millisecond)
		}
	}
	l.release()
	for want := range 5 {
		if got := <-order; got != want {
			t.Fatalf("served %d, want %d", got, want)
		}
	}
}

func TestLimiterLiveLimitAndCancel(t *testing.T) {
	l := newLimiter(1)
	_ = l.acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.acquire(ctx) }()
	got := make(chan error, 1)
	go func() {
		for {
			if _, q := l.stats(); q == 1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		got <- l.acquire(context.Background())
	}()
	for {
		if _, q := l.stats(); q == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("cancelled acquire returned nil")
	}
	l.setLimit(2) // admits the second waiter while the first holder runs
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if r, q := l.stats(); r != 2 || q != 0 {
		t.Fatalf("running %d queued %d, want 2 0", r, q)
	}
}
