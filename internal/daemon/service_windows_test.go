//go:build windows

package daemon

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/windows/svc"
)

// execute runs h.Execute with fake service manager channels and returns
// its result and the states it reported.
func execute(t *testing.T, h *handler, reqs ...svc.ChangeRequest) (bool, uint32, []svc.State) {
	t.Helper()
	r := make(chan svc.ChangeRequest, len(reqs))
	for _, c := range reqs {
		r <- c
	}
	s := make(chan svc.Status, 16)
	type res struct {
		ssec bool
		code uint32
	}
	done := make(chan res, 1)
	go func() {
		ssec, code := h.Execute([]string{ServiceName}, r, s)
		done <- res{ssec, code}
	}()
	select {
	case got := <-done:
		close(s)
		var states []svc.State
		for st := range s {
			states = append(states, st.State)
		}
		return got.ssec, got.code, states
	case <-time.After(10 * time.Second):
		t.Fatal("Execute did not return")
	}
	return false, 0, nil
}

func TestServiceStop(t *testing.T) {
	h := &handler{ctx: context.Background(), run: func(ctx context.Context) int { <-ctx.Done(); return 0 }}
	ssec, code, states := execute(t, h, svc.ChangeRequest{Cmd: svc.Stop})
	if ssec || code != 0 || h.code != 0 {
		t.Fatalf("Execute = %v, %d (code %d), want a clean stop", ssec, code, h.code)
	}
	if len(states) < 3 || states[0] != svc.StartPending || states[1] != svc.Running || states[len(states)-1] != svc.StopPending {
		t.Fatalf("states %v", states)
	}
}

func TestServiceRestartExitCode(t *testing.T) {
	h := &handler{ctx: context.Background(), run: func(context.Context) int { return 64 }}
	ssec, code, _ := execute(t, h)
	if !ssec || code != 64 || h.code != 64 {
		t.Fatalf("Execute = %v, %d (code %d), want service-specific 64", ssec, code, h.code)
	}
}
