package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

var scheduleCmd = &command{
	name:    "schedule",
	args:    "put FILE | ls [--json] | rm ID",
	summary: "manage the schedules KV bucket (upstream's kanade schedule)",
	long: `put stores the schedule in FILE (a JSON Schedule document, as upstream's
backend stores it: id, when, job_id, target, runs_on, ...) in the schedules
bucket under its id, after upstream's create-time checks (wire.Schedule
Validate): one of cron / calendar / on, a known trigger, a valid time zone,
active and constraints bounds. Agents run the runs_on: agent ones
themselves. A job_id that is not in the jobs bucket is reported on stderr
(the schedule is stored: the job may come later).

ls lists the schedules (--json: one stored document per line). rm deletes
one. Upstream's CLI names create, list and delete are accepted too.`,
	run: runSchedule,
}

var jobCmd = &command{
	name:    "job",
	args:    "put FILE | ls [--json] | rm ID",
	summary: "manage the jobs KV bucket, the job catalog (upstream's kanade job)",
	long: `put stores the job (manifest) in FILE, a JSON Job document (id, version,
execute {shell, script | script_file | script_object, timeout, run_as},
...), in the jobs bucket under its id, after upstream's create-time checks
(wire.Job Validate). An execute.script_file is read (relative to FILE's
directory) and stored inline as execute.script, as upstream's CLI does.

ls lists the jobs (--json: one stored document per line). rm deletes a job
unless a schedule refers to it, and marks it REVOKED in script_status so
that a command of it still in flight is skipped, as upstream does. Upstream's
CLI names create, list and delete are accepted too.`,
	run: runJob,
}

// catalog is one KV bucket of documents keyed by their id.
type catalog struct {
	name   string // "schedule" or "job"
	bucket string
	// check decodes and validates a document read from a file, resolving
	// file references relative to dir, and returns its id and the bytes to
	// store.
	check func(b []byte, dir string) (id string, store []byte, err error)
	// row returns the ls columns of a stored document.
	row    func(b []byte) []string
	header []string
}

var scheduleCatalog = &catalog{
	name: "schedule", bucket: subject.BucketSchedules,
	check: func(b []byte, _ string) (string, []byte, error) {
		s, err := wire.DecodeSchedule(b)
		if err != nil {
			return "", nil, err
		}
		if err := s.Validate(); err != nil {
			return "", nil, err
		}
		out, err := compact(b)
		return s.ID, out, err
	},
	header: []string{"ID", "JOB", "WHEN", "RUNS_ON", "ENABLED", "TARGET"},
	row: func(b []byte) []string {
		s, err := wire.DecodeSchedule(b)
		if err != nil {
			return []string{"", "", "", "", "", "unreadable: " + oneLine(err.Error())}
		}
		return []string{s.ID, s.JobID, s.When.String(), s.RunsOn, fmt.Sprint(s.Enabled), targetString(s.Target)}
	},
}

var jobCatalog = &catalog{
	name: "job", bucket: subject.BucketJobs,
	check: func(b []byte, dir string) (string, []byte, error) {
		j, err := wire.DecodeJob(b)
		if err != nil {
			return "", nil, err
		}
		// Validate first, so that script and script_file both set is
		// refused before the file is inlined (as upstream).
		if err := j.Validate(); err != nil {
			return "", nil, err
		}
		f := j.Execute.ScriptFile
		if f == "" {
			out, err := compact(b) // as given: fields this tool does not know are kept
			return j.ID, out, err
		}
		if !filepath.IsAbs(f) {
			f = filepath.Join(dir, f)
		}
		script, err := os.ReadFile(f)
		if err != nil {
			return "", nil, fmt.Errorf("execute.script_file: %w", err)
		}
		j.Execute.Script, j.Execute.ScriptFile = string(script), ""
		out, err := wire.Marshal(j)
		return j.ID, out, err
	},
	header: []string{"ID", "VERSION", "SHELL", "TIMEOUT", "RUN_AS"},
	row: func(b []byte) []string {
		j, err := wire.DecodeJob(b)
		if err != nil {
			return []string{"", "", "", "", "unreadable: " + oneLine(err.Error())}
		}
		return []string{j.ID, j.Version, j.Execute.Shell, j.Execute.Timeout, j.Execute.RunAs}
	},
}

func targetString(t wire.Target) string {
	var parts []string
	if t.All {
		parts = append(parts, "all")
	}
	if len(t.Groups) > 0 {
		parts = append(parts, "groups="+strings.Join(t.Groups, ","))
	}
	if len(t.Pcs) > 0 {
		parts = append(parts, "pcs="+strings.Join(t.Pcs, ","))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func runSchedule(ctx context.Context, inv *invocation, args []string) error {
	return scheduleCatalog.run(ctx, inv, args)
}

func runJob(ctx context.Context, inv *invocation, args []string) error {
	return jobCatalog.run(ctx, inv, args)
}

// kvKey matches a valid NATS KV key.
var kvKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

// validKey reports why id cannot be a KV key, or nil.
func validKey(id string) error {
	if !kvKey.MatchString(id) || strings.HasPrefix(id, ".") || strings.HasSuffix(id, ".") {
		return fmt.Errorf("id %q cannot be a KV key: use letters, digits and - / _ = . (not first or last)", id)
	}
	return nil
}

func (c *catalog) run(ctx context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	asJSON := fs.Bool("json", false, "ls: print each stored document as one JSON line")
	pos, err := inv.parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("%s needs a subcommand: put FILE, ls or rm ID", c.name)
	}
	sub, rest := pos[0], pos[1:]
	one := func(what string) (string, error) {
		if len(rest) != 1 {
			return "", usageErrorf("%s %s takes one %s, got %q", c.name, sub, what, rest)
		}
		return rest[0], nil
	}
	switch sub {
	case "put", "create":
		file, err := one("FILE")
		if err != nil {
			return err
		}
		return c.put(ctx, inv, file)
	case "ls", "list":
		if len(rest) > 0 {
			return usageErrorf("%s ls takes no arguments, got %q", c.name, rest)
		}
		return c.list(ctx, inv, *asJSON)
	case "rm", "delete":
		id, err := one("ID")
		if err != nil {
			return err
		}
		return c.remove(ctx, inv, id)
	}
	return usageErrorf("unknown %s subcommand %q: want put, ls or rm", c.name, sub)
}

func (c *catalog) put(ctx context.Context, inv *invocation, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("%s: not a JSON object (YAML is not read: convert it to JSON)", file)
	}
	id, store, err := c.check(b, filepath.Dir(file))
	if err != nil {
		return fmt.Errorf("%s: %s", file, oneLine(err.Error()))
	}
	if err := validKey(id); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	js, octx, done, err := inv.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	kv, err := js.KeyValue(octx, c.bucket)
	if err != nil {
		return jsError("bucket "+c.bucket, err)
	}
	rev, err := kv.Put(octx, id, store)
	if err != nil {
		return jsError("put "+c.bucket+" "+id, err)
	}
	fmt.Fprintf(inv.env.Stdout, "stored %s %s (revision %d)\n", c.name, id, rev)
	if c == scheduleCatalog {
		s, _ := wire.DecodeSchedule(store)
		if jobs, err := js.KeyValue(octx, subject.BucketJobs); err == nil {
			if _, err := jobs.Get(octx, s.JobID); errors.Is(err, jetstream.ErrKeyNotFound) {
				fmt.Fprintf(inv.env.Stderr, "kanade schedule: note: job %q is not in the jobs bucket yet ('kanade job put')\n", s.JobID)
			}
		}
	}
	return nil
}

// entries returns the bucket's keys and values, sorted by key.
func (c *catalog) entries(ctx context.Context, kv jetstream.KeyValue) ([]jetstream.KeyValueEntry, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop() // the channel was drained: the walk is over
	slices.Sort(keys)
	var out []jetstream.KeyValueEntry
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (c *catalog) list(ctx context.Context, inv *invocation, asJSON bool) error {
	js, octx, done, err := inv.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	kv, err := js.KeyValue(octx, c.bucket)
	if err != nil {
		return jsError("bucket "+c.bucket, err)
	}
	es, err := c.entries(octx, kv)
	if err != nil {
		return jsError("list "+c.bucket, err)
	}
	w := inv.env.Stdout
	if asJSON {
		for _, e := range es {
			var buf bytes.Buffer
			if json.Compact(&buf, e.Value()) != nil {
				buf.Reset()
				b, _ := json.Marshal(string(e.Value())) // not JSON: shown as a string
				buf.Write(b)
			}
			buf.WriteByte('\n')
			if _, err := w.Write(buf.Bytes()); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(c.header, "\t"))
	for _, e := range es {
		cols := c.row(e.Value())
		if cols[0] == "" {
			cols[0] = e.Key()
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	return tw.Flush()
}

func (c *catalog) remove(ctx context.Context, inv *invocation, id string) error {
	if err := validKey(id); err != nil {
		return usageErr(err)
	}
	js, octx, done, err := inv.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	kv, err := js.KeyValue(octx, c.bucket)
	if err != nil {
		return jsError("bucket "+c.bucket, err)
	}
	if _, err := kv.Get(octx, id); errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("no %s %q in bucket %s", c.name, id, c.bucket)
	} else if err != nil {
		return jsError("get "+c.bucket+" "+id, err)
	}
	if c == jobCatalog {
		if err := refuseReferenced(octx, js, id); err != nil {
			return err
		}
	}
	if err := kv.Delete(octx, id); err != nil {
		return jsError("delete "+c.bucket+" "+id, err)
	}
	fmt.Fprintf(inv.env.Stdout, "deleted %s %s\n", c.name, id)
	if c == jobCatalog {
		// As upstream: a command of the deleted job still in flight (queued
		// on an offline agent, waiting for its slot) is skipped (exit 126).
		st, err := js.KeyValue(octx, subject.BucketScriptStatus)
		if err == nil {
			_, err = st.PutString(octx, id, "REVOKED")
		}
		if err != nil {
			return jsError("revoke "+id+" in "+subject.BucketScriptStatus, err)
		}
		fmt.Fprintf(inv.env.Stdout, "revoked %s in %s\n", id, subject.BucketScriptStatus)
	}
	return nil
}

// refuseReferenced fails when a schedule refers to job id.
func refuseReferenced(ctx context.Context, js jetstream.JetStream, id string) error {
	kv, err := js.KeyValue(ctx, subject.BucketSchedules)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return jsError("bucket "+subject.BucketSchedules, err)
	}
	es, err := scheduleCatalog.entries(ctx, kv)
	if err != nil {
		return jsError("list "+subject.BucketSchedules, err)
	}
	var users []string
	for _, e := range es {
		if s, err := wire.DecodeSchedule(e.Value()); err == nil && s.JobID == id {
			users = append(users, e.Key())
		}
	}
	if len(users) > 0 {
		return fmt.Errorf("job %s is used by schedule %s: remove or change those first", id, strings.Join(users, ", "))
	}
	return nil
}

// compact returns the JSON document b without insignificant space.
func compact(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
