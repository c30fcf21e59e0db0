package session_test

import (
	"log"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/session"
)

// *Source is an agent.ObsSource.
var _ agent.ObsSource = (*session.Source)(nil)

// A host program runs the Source beside the agent: its active/idle events
// go to the agent's obs outbox, and the session changes its service
// handler notifies reach the scheduler through OnTrigger.
func ExampleSource() {
	var a *agent.Agent
	src, err := session.New(session.Options{
		// HelperPath defaults to this binary, which must answer
		// --session-agent with session.RunHelper (see session.IsHelper).
		OnTrigger: func(kind string) { log.Printf("trigger %s for %v", kind, a != nil) },
	})
	if err != nil {
		log.Fatal(err)
	}
	a, err = agent.New(agent.Options{PcID: "pc-01", DataDir: "/var/lib/kanade", ObsSources: []agent.ObsSource{src}})
	if err != nil {
		log.Fatal(err)
	}
	// In the Windows service's handler, for SERVICE_CONTROL_SESSIONCHANGE:
	//	src.Notify(session.FromWTS(eventType, sessionID))
	// and then: a.Run(ctx)
}
