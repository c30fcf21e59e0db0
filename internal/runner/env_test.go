package runner

import (
	"fmt"
	"testing"
)

func TestScrubEnv(t *testing.T) {
	env := []string{"PATH=/bin", "KANADE_NATS_TOKEN=t", "NATS_URL=nats://u:p@h", "kanade_nats_password=p",
		"Nats_Creds=c", "NATSX=keep", "MY_KANADE_X=keep", "KANADE=keep", "=C:=C:\\", "HOME=/root"}
	got := scrubEnv(env, false)
	want := []string{"PATH=/bin", "kanade_nats_password=p", "Nats_Creds=c", "NATSX=keep", "MY_KANADE_X=keep", "KANADE=keep", "=C:=C:\\", "HOME=/root"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("case-sensitive:\n got %q\nwant %q", got, want)
	}
	got = scrubEnv(env, true)
	want = []string{"PATH=/bin", "NATSX=keep", "MY_KANADE_X=keep", "KANADE=keep", "=C:=C:\\", "HOME=/root"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("case-insensitive:\n got %q\nwant %q", got, want)
	}
	if env[1] != "KANADE_NATS_TOKEN=t" {
		t.Error("input modified")
	}
}
