package ledger_test

import (
	"fmt"
	"os"

	"github.com/kanade/kanade-agent/internal/ledger"
)

// The life of one command in the ledger, and what a restart sees.
func Example() {
	dir, _ := os.MkdirTemp("", "ledger-example-")
	defer os.RemoveAll(dir)

	l, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The same command arrives twice (commands.all and the EXEC replay).
	ok, _, _ := l.Claim("req-1")
	fmt.Println("first claim wins:", ok)
	ok, st, _ := l.Claim("req-1")
	fmt.Println("second claim wins:", ok, "state:", st)

	// Durable before the script is spawned.
	if err := l.Launching("req-1", []byte(`{"exec_id":"e-1"}`)); err != nil {
		fmt.Println("do not run:", err)
		return
	}
	// ... the agent crashes while the script runs ...
	l.Close()

	l, _ = ledger.Open(dir, ledger.Options{})
	defer l.Close()
	for _, e := range l.Recovered() {
		fmt.Printf("recovered %s %s meta=%s: report exit 121\n", e.RequestID, e.State, e.Meta)
		l.Finished(e.RequestID) // after the 121 result is enqueued
	}
	ok, st, _ = l.Claim("req-1")
	fmt.Println("replayed copy wins:", ok, "state:", st)
	// Output:
	// first claim wins: true
	// second claim wins: false state: pending
	// recovered req-1 launching meta={"exec_id":"e-1"}: report exit 121
	// replayed copy wins: false state: finished
}
