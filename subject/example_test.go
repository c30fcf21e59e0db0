package subject_test

import (
	"errors"
	"fmt"

	"github.com/kanade/kanade-agent/subject"
)

func ExampleValidToken() {
	fmt.Println(subject.ValidToken("pc_id", "desktop-01"))
	fmt.Println(subject.ValidToken("pc_id", "desktop.corp"))

	err := subject.ValidToken("group", "")
	var te *subject.TokenError
	fmt.Println(errors.Is(err, subject.ErrInvalidToken), errors.As(err, &te), te.Kind, te.Reason)
	// Output:
	// <nil>
	// subject: invalid pc_id "desktop.corp": contains '.'
	// true true group empty
}

func ExampleSanitizePcID() {
	fmt.Println(subject.SanitizePcID("DESKTOP-01.corp.example.com"))
	fmt.Println(subject.SanitizePcID("Alice's MacBook"))
	fmt.Println(subject.SanitizePcID(""))
	// Output:
	// desktop-01-corp-example-com
	// alice-s-macbook
	// unknown
}

func ExampleCommandsGroup() {
	fmt.Println(subject.CommandsGroup("tokyo-office"))
	fmt.Println(subject.CommandsGroup("tokyo office"))
	// Output:
	// commands.group.tokyo-office <nil>
	//  subject: invalid group "tokyo office": contains whitespace
}

func ExampleCommandsPC() {
	fmt.Println(subject.CommandsPC("desktop-01"))
	// Output: commands.pc.desktop-01 <nil>
}

func ExampleKill() {
	fmt.Println(subject.Kill("exec-42"))
	fmt.Println(subject.Kill("*"))
	// Output:
	// kill.exec-42 <nil>
	//  subject: invalid exec_id "*": contains '*'
}

func ExamplePing() {
	fmt.Println(subject.Ping("desktop-01"))
	// Output: agents.desktop-01.ping <nil>
}

func ExampleLogsFetch() {
	fmt.Println(subject.LogsFetch("desktop-01"))
	// Output: logs.fetch.desktop-01 <nil>
}

func ExampleResult() {
	fmt.Println(subject.Result("req-01JQ5W0Z"))
	// Output: results.req-01JQ5W0Z <nil>
}

func ExampleEventStarted() {
	fmt.Println(subject.EventStarted("exec-42", "desktop-01"))
	fmt.Println(subject.EventStarted("exec-42", ""))
	// Output:
	// events.started.exec-42.desktop-01 <nil>
	//  subject: invalid pc_id "": empty
}

func ExampleObs() {
	fmt.Println(subject.Obs("desktop-01"))
	// Output: obs.desktop-01 <nil>
}

func ExampleInventory() {
	fmt.Println(subject.Inventory("desktop-01", "hw"))
	// Output: inventory.desktop-01.hw <nil>
}

func ExampleHeartbeat() {
	fmt.Println(subject.Heartbeat("desktop-01"))
	// Output: heartbeat.desktop-01 <nil>
}

func ExampleHostPerf() {
	fmt.Println(subject.HostPerf("desktop-01"))
	// Output: host_perf.desktop-01 <nil>
}

func ExampleExecConsumer() {
	fmt.Println(subject.ExecConsumer("desktop-01"))
	// Output: agent-desktop-01 <nil>
}

func ExampleConfigGroupKey() {
	fmt.Println(subject.ConfigGroupKey("tokyo-office"))
	// Output: groups.tokyo-office <nil>
}

func ExampleConfigPCKey() {
	fmt.Println(subject.ConfigPCKey("desktop-01"))
	// Output: pcs.desktop-01 <nil>
}

func ExampleResultOutputKey() {
	fmt.Println(subject.ResultOutputKey("req-01JQ5W0Z", "stdout"))
	fmt.Println(subject.ResultOutputKey("req-01JQ5W0Z", "stdin"))
	// Output:
	// req-01JQ5W0Z/stdout <nil>
	//  subject: invalid stream "stdin": not stdout or stderr
}
