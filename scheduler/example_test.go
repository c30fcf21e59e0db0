package scheduler_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kanade/kanade-agent/scheduler"
	"github.com/kanade/kanade-agent/wire"
)

func Example() {
	dir, _ := os.MkdirTemp("", "sched-example")
	defer os.RemoveAll(dir)
	submitted := make(chan *wire.Command, 1)
	s, err := scheduler.New(scheduler.Options{
		Dir:  dir,
		PcID: "pc-01",
		Submit: func(ctx context.Context, cmd *wire.Command) error {
			submitted <- cmd // the agent would run it and call Completed
			return nil
		},
		PollInterval: 10 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	job, _ := wire.DecodeJob([]byte(`{"id":"inventory-hw","version":"1.0.0","execute":{"shell":"sh","script":"uname -a","timeout":"30s"}}`))
	sched, _ := wire.DecodeSchedule([]byte(`{"id":"kitting","when":{"per_pc":"once"},"job_id":"inventory-hw","target":{"all":true},"runs_on":"agent"}`))
	s.SetJob(job.ID, job, "")
	s.SetSchedule(sched.ID, sched)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	cmd := <-submitted
	fmt.Println(cmd.ID, cmd.Version, cmd.Shell, cmd.Script)
	s.Completed(cmd.RequestID, 0) // exit 0: per_pc once never fires again
	_, done := s.LastCompletion("kitting", "inventory-hw")
	fmt.Println("completed:", done)
	// Output:
	// inventory-hw 1.0.0 sh uname -a
	// completed: true
}
