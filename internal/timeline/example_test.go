package timeline_test

import (
	"context"
	"fmt"
	"log"
	"os/signal"
	"syscall"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/timeline"
)

// A Windows logon (Winlogon 7001) as EvtRender renders it, decoded and
// mapped to its ObsEvent fields.
func ExampleDecodeEventXML() {
	doc := `<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>` +
		`<Provider Name='Microsoft-Windows-Winlogon' Guid='{dbe9b383-7cf3-4331-91cc-a3cb16a3b538}'/>` +
		`<EventID>7001</EventID><TimeCreated SystemTime='2026-12-02T08:01:02.1234567Z'/>` +
		`<EventRecordID>100101</EventRecordID><Channel>System</Channel></System>` +
		`<EventData><Data Name='TSId'>1</Data><Data Name='UserSid'>S-1-5-21-1-2-3-1001</Data></EventData></Event>`
	ev, err := timeline.DecodeEventXML([]byte(doc))
	if err != nil {
		log.Fatal(err)
	}
	row, payload, ok := timeline.MapEvent(ev, nil)
	fmt.Println(ok, row.Kind, "winlog:"+row.Channel, ev.RecordID, ev.At.Format("15:04:05.0000000"))
	fmt.Println(string(payload))
	// Output:
	// true logon winlog:System 100101 08:01:02.1234567
	// {"session_id":1,"sid":"S-1-5-21-1-2-3-1001","user":"S-1-5-21-1-2-3-1001"}
}

// The timeline source in an agent: the agent runs it and stores what it
// emits in the obs outbox.
func ExampleNew() {
	const dataDir = "/var/lib/kanade"
	src, err := timeline.New(timeline.Options{Dir: dataDir})
	if err != nil {
		log.Fatal(err)
	}
	a, err := agent.New(agent.Options{DataDir: dataDir, ObsSources: []agent.ObsSource{src}})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
