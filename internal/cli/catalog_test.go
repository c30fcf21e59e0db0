package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	testSchedule = `{"id":"nightly","when":{"calendar":{"at":"02:00","days":["mon-fri"]}},"job_id":"echo-test",
  "target":{"groups":["lab"],"pcs":[],"all":false},"tz":"local","runs_on":"agent","enabled":true,"extra_field":"kept"}`
	testJob = `{"id":"echo-test","version":"1.0.0",
  "execute":{"shell":"sh","script_file":"scripts/echo.sh","timeout":"30s","run_as":"system"},"require_approval":false}`
)

// TestScheduleAndJob: put validates and stores under the id, ls lists, rm
// deletes; a job that a schedule uses is not removed, and a removed job is
// revoked in script_status.
func TestScheduleAndJob(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	k := kanade(srv.URL())
	dir := natstest.TempDir(t)
	if err := os.Mkdir(filepath.Join(dir, "scripts"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "scripts"), "echo.sh", "echo from-file\n")
	sched := writeFile(t, dir, "nightly.json", testSchedule)
	job := writeFile(t, dir, "echo.json", testJob)

	// The schedule before its job: stored, with a note.
	o := k("schedule", "put", sched).want(t, 0)
	mentions(t, "stdout", o.stdout, "stored schedule nightly")
	mentions(t, "stderr", o.stderr, `job "echo-test" is not in the jobs bucket`)
	o = k("job", "create", job).want(t, 0) // upstream's name
	mentions(t, "stdout", o.stdout, "stored job echo-test")

	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := kvGet(t, js, subject.BucketJobs, "echo-test")
	j, err := wire.DecodeJob(e)
	if err != nil || j.Execute.Script != "echo from-file\n" || j.Execute.ScriptFile != "" {
		t.Fatalf("stored job %s (%v): script_file not inlined", e, err)
	}
	e = kvGet(t, js, subject.BucketSchedules, "nightly")
	if !strings.Contains(string(e), `"extra_field":"kept"`) || strings.Contains(string(e), "\n") {
		t.Fatalf("stored schedule %s: want the document as given, compacted", e)
	}

	o = k("schedule", "ls").want(t, 0)
	if !regexp.MustCompile(`(?m)^nightly +echo-test +at 02:00 \[mon-fri\] +agent +true +groups=lab$`).MatchString(o.stdout) {
		t.Errorf("schedule ls:\n%s", o.stdout)
	}
	o = k("job", "list", "--json").want(t, 0)
	if lines := strings.Split(strings.TrimSpace(o.stdout), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], `{"id":"echo-test"`) {
		t.Errorf("job ls --json:\n%s", o.stdout)
	}

	o = k("job", "rm", "echo-test").want(t, 1)
	mentions(t, "stderr", o.stderr, "used by schedule nightly")
	k("schedule", "rm", "nightly").want(t, 0)
	o = k("job", "delete", "echo-test").want(t, 0)
	mentions(t, "stdout", o.stdout, "deleted job echo-test", "revoked echo-test")
	if v := kvGet(t, js, subject.BucketScriptStatus, "echo-test"); string(v) != "REVOKED" {
		t.Fatalf("script_status echo-test = %q", v)
	}
	kv, _ := js.KeyValue(ctx, subject.BucketJobs)
	if _, err := kv.Get(ctx, "echo-test"); err == nil {
		t.Fatal("job still stored")
	}
	o = k("schedule", "ls").want(t, 0)
	if strings.Contains(o.stdout, "nightly") {
		t.Fatalf("schedule still listed:\n%s", o.stdout)
	}
	k("schedule", "rm", "nightly").want(t, 1)
}

// TestCatalogRefusesBadDocuments: what upstream's create-time checks
// refuse is not stored.
func TestCatalogRefusesBadDocuments(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	k := kanade(srv.URL())
	dir := natstest.TempDir(t)
	for _, tc := range []struct {
		cmd, doc, want string
	}{
		{"schedule", `{"id":"x","when":{"cron":"* * * * *","per_pc":"once"},"job_id":"j","target":{"all":true},"tz":"local","runs_on":"agent","enabled":true}`, "schedule"},
		{"schedule", `{"id":"x","when":{"on":["reboot"]},"job_id":"j","target":{"all":true},"tz":"local","runs_on":"agent","enabled":true}`, "reboot"},
		{"schedule", `{"id":"x","id":"y"}`, "duplicate"},
		{"job", `{"id":"j","version":"1","execute":{"shell":"sh","script":"a","script_object":"b/1","timeout":"1s","run_as":"system"}}`, "job"},
		{"job", `{"id":"bad key","version":"1","execute":{"shell":"sh","script":"a","timeout":"1s","run_as":"system"}}`, "KV key"},
		{"job", "id: yaml\n", "not a JSON object"},
	} {
		f := writeFile(t, dir, "doc.json", tc.doc)
		o := k(tc.cmd, "put", f).want(t, 1)
		mentions(t, tc.cmd+" put stderr", o.stderr, tc.want)
	}
	o := k("job", "ls").want(t, 0)
	if strings.TrimSpace(o.stdout) != "ID  VERSION  SHELL  TIMEOUT  RUN_AS" {
		t.Fatalf("something was stored:\n%s", o.stdout)
	}
	k("job").want(t, 2)
	k("job", "frob").want(t, 2)
	k("schedule", "put").want(t, 2)
}

func kvGet(t *testing.T, js jetstream.JetStream, bucket, key string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatalf("%s %s: %v", bucket, key, err)
	}
	return e.Value()
}
