package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kanade/kanade-agent/internal/bytesize"
	"github.com/kanade/kanade-agent/provision"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go/jetstream"
)

var provisionCmd = &command{
	name:    "provision",
	args:    "[--check] [--max-bytes SIZE] [--replicas N]",
	summary: "create the protocol's missing streams, KV buckets and object stores",
	long: `Creates what is missing, with the settings of upstream kanade's bootstrap
(provision.Provision): streams EXEC, RESULTS, EVENTS, OBS_EVENTS, INVENTORY;
buckets agent_config, agent_groups, agent_groups_derived, script_current,
script_status, schedules, jobs, fleet_config; object stores agent_releases,
result_output, scripts, collections. EXEC is created with max_consumers
1000000 (one consumer per agent; nats-server allows 1,000 per stream
otherwise). What exists is never changed, even when its settings differ
from those (a server set up by a kanade backend keeps its own): each
difference is printed as a "differs:" line. Running it again changes
nothing. Then it lists what exists, with message counts and sizes.

With --max-bytes the byte limits of what is created (streams about
3.9 GiB in all, result_output 1 GiB, collections 5 GiB) are scaled down in
proportion so that they fit SIZE (such as 1GiB) together: for a server
whose JetStream store is smaller, such as an agent's embedded server
started with --embedded-max-store (give half of that, as the agent does).

With --replicas N (default 1) what is created has N replicas: 3 on a
JetStream cluster. What exists keeps its count; a different one is printed
as a "differs:" line.

With --check it changes nothing, prints the differences, lists what exists
and exits 1 when something is missing. Differences alone do not fail.`,
	run: runProvision,
}

func runProvision(ctx context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	check := fs.Bool("check", false, "only list what exists; exit 1 when something is missing")
	maxBytes := fs.String("max-bytes", "", "scale the streams' byte limits to fit `SIZE` in all, such as 1GiB (default: the protocol's limits)")
	replicas := fs.Int("replicas", 0, "create with `N` replicas: 1 on a single server (default), 3 on a cluster")
	if err := inv.parse(fs, args); err != nil {
		return err
	}
	var budget int64
	if *maxBytes != "" {
		var err error
		if budget, err = bytesize.Parse(*maxBytes); err != nil || budget == 0 {
			return usageErrorf("--max-bytes %q: want a positive byte count such as 1073741824, 512MiB or 2GiB", *maxBytes)
		}
	}
	if len(fs.Args()) > 0 {
		return usageErrorf("provision takes no arguments, got %q", fs.Args())
	}
	opts := provision.Options{Budget: budget, Replicas: *replicas}
	if err := opts.Validate(); err != nil || *replicas < 0 {
		return usageErrorf("--replicas %d: want 1 to 5", *replicas)
	}
	// Creating the object stores and buckets takes a few round trips each.
	js, pctx, done, err := inv.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	do := provision.ProvisionWith
	if *check {
		do = provision.InspectWith
	}
	rep, err := do(pctx, js, opts)
	w := inv.env.Stdout
	for _, c := range rep.Created {
		fmt.Fprintf(w, "created: %s\n", c)
	}
	for _, d := range rep.Differences {
		fmt.Fprintf(w, "differs: %s; left unchanged\n", d)
		if d.Field == "max_consumers" && d.Name == subject.StreamExec {
			fmt.Fprintf(w, "hint: each agent holds a consumer on EXEC, and nats-server allows 1,000 per stream unless max_consumers is set: for a larger fleet run 'nats stream edit EXEC --max-consumers %s' (the update keeps the stream's consumers)\n", d.Want)
		}
	}
	if err != nil {
		return jsError("provision", err)
	}
	if !*check {
		fmt.Fprintf(w, "provisioned: %d created, %d already there (never changed), %d differences\n",
			len(rep.Created), len(rep.Existing), len(rep.Differences))
	}
	listProvisioned(pctx, w, js)
	if err := provision.Check(pctx, js); err != nil {
		if *check {
			return fmt.Errorf("%v: run 'kanade provision' to create it", strings.TrimPrefix(err.Error(), "provision: "))
		}
		return jsError("check after provision", err)
	}
	return nil
}

// listProvisioned prints each stream, bucket and object store of the
// protocol with its state, or "missing".
func listProvisioned(ctx context.Context, w io.Writer, js jetstream.JetStream) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "KIND\tNAME\tSTATE")
	for _, cfg := range provision.Streams() {
		state := "missing"
		if st, err := js.Stream(ctx, cfg.Name); err == nil {
			info := st.CachedInfo()
			state = fmt.Sprintf("%s; %d msgs, %s (limit %s)", strings.Join(info.Config.Subjects, " "),
				info.State.Msgs, byteSize(int64(info.State.Bytes)), byteSize(info.Config.MaxBytes))
		} else if !isNotFound(err) {
			state = "error: " + oneLine(err.Error())
		}
		fmt.Fprintf(tw, "stream\t%s\t%s\n", cfg.Name, state)
	}
	for _, cfg := range provision.Buckets() {
		state := "missing"
		if kv, err := js.KeyValue(ctx, cfg.Bucket); err == nil {
			if s, err := kv.Status(ctx); err == nil {
				state = fmt.Sprintf("%d values, %s", s.Values(), byteSize(int64(s.Bytes())))
			} else {
				state = "exists; status: " + oneLine(err.Error())
			}
		} else if !isNotFound(err) {
			state = "error: " + oneLine(err.Error())
		}
		fmt.Fprintf(tw, "bucket\t%s\t%s\n", cfg.Bucket, state)
	}
	for _, cfg := range provision.ObjectStores() {
		state := "missing"
		if obs, err := js.ObjectStore(ctx, cfg.Bucket); err == nil {
			if s, err := obs.Status(ctx); err == nil {
				state = byteSize(int64(s.Size()))
			} else {
				state = "exists; status: " + oneLine(err.Error())
			}
		} else if !isNotFound(err) {
			state = "error: " + oneLine(err.Error())
		}
		fmt.Fprintf(tw, "object store\t%s\t%s\n", cfg.Bucket, state)
	}
}

func isNotFound(err error) bool {
	return errorsIsAny(err, jetstream.ErrStreamNotFound, jetstream.ErrBucketNotFound)
}

// byteSize formats n bytes for people: 512 B, 1.5 KiB, 64 MiB; a
// negative limit is "none".
func byteSize(n int64) string {
	if n < 0 {
		return "none"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
}
