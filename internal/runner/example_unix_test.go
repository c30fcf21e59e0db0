//go:build unix

package runner_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kanade/kanade-agent/internal/runner"
	"github.com/kanade/kanade-agent/wire"
)

func ExampleRun() {
	ctx := context.Background() // the agent cancels it on kill.<exec_id>
	spec := runner.Spec{
		Shell:   wire.ShellSh,
		Script:  "echo hello; echo oops >&2; exit 3",
		Timeout: 30 * time.Second,
	}
	if err := runner.Supported(spec.Shell, spec.RunAs); err != nil {
		fmt.Println("exit", wire.ExitUnsupported, err)
		return
	}
	r := runner.Run(ctx, spec)
	fmt.Printf("exit %d stdout %q stderr %q note %q\n", r.ExitCode, r.Stdout, r.Stderr, r.Note("e-1"))

	spec.Script, spec.Timeout = "sleep 60", 100*time.Millisecond
	r = runner.Run(ctx, spec)
	fmt.Printf("exit %d timed out %v note %q\n", r.ExitCode, r.TimedOut, r.Note("e-1"))
	// Output:
	// exit 3 stdout "hello\n" stderr "oops\n" note ""
	// exit -1 timed out true note "timeout after 1s"
}
