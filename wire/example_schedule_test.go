package wire_test

import (
	"fmt"

	"github.com/kanade/kanade-agent/wire"
)

func ExampleDecodeSchedule() {
	s, err := wire.DecodeSchedule([]byte(`{"id":"patch-tuesday","when":{"calendar":{"at":"09:00","days":["tue#2"]}},` +
		`"job_id":"windows-update","target":{"groups":["canary"]},"runs_on":"agent","tz":"utc",` +
		`"constraints":{"window":"08:00-18:00","require":{"ac_power":true}}}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(s.When, s.RunsOn, s.Tz, s.Enabled)
	fmt.Println(s.Target.Matches("pc-01", []string{"canary"}), s.Target.Matches("pc-02", nil))
	b, _ := wire.Marshal(s)
	fmt.Println(string(b))
	// Output:
	// at 09:00 [tue#2] agent utc true
	// true false
	// {"id":"patch-tuesday","when":{"calendar":{"at":"09:00","days":["tue#2"]}},"job_id":"windows-update","target":{"groups":["canary"],"pcs":[],"all":false},"constraints":{"window":"08:00-18:00","require":{"ac_power":true}},"tz":"utc","runs_on":"agent","enabled":true}
}

func ExampleDecodeJob() {
	j, err := wire.DecodeJob([]byte(`{"id":"inventory-hw","version":"1.0.0","execute":{"shell":"powershell","script":"Get-CimInstance Win32_BIOS","timeout":"2m"}}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(j.ID, j.Version, j.Execute.Shell, j.Execute.RunAs, j.TimeoutSecs())
	// Output:
	// inventory-hw 1.0.0 powershell system 120
}
