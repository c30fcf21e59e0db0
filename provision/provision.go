// Package provision creates the JetStream streams, KV buckets and object
// stores of the kanade protocol on a server, with the settings upstream
// kanade's bootstrap gives them (docs/protocol.md). The agent uses it when
// it runs its own embedded server; a backend or test harness can call it
// too.
//
// Provisioning never changes what exists: a stream, bucket or object store
// that is already there is left exactly as it is, even when its settings
// differ from ours (an upstream server is configured by its backend, and
// rewriting, say, script_current's history would lose what it keeps). The
// differences are returned in a Report instead. Only what is missing is
// created.
//
// [Options] choose the replicas of what is created (1 on a single server,
// 3 on a JetStream cluster), a byte budget for a small store, and the EXEC
// stream's consumer limit. Every agent holds one durable consumer on EXEC,
// and nats-server refuses more than 1,000 consumers on a stream unless the
// stream sets a positive max_consumers or the server's
// jetstream { limits { default_max_consumers: -1 } } lifts the default
// (max_consumers -1 on the stream does not: nats-server v2.15 applies its
// default when neither the stream nor the account sets a positive limit),
// so EXEC is created with max_consumers [DefaultExecMaxConsumers].
package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	day = 24 * time.Hour
	mib = 1 << 20
	gib = 1 << 30
)

// DuplicateWindow is the duplicate window of the outbox streams (ours: at
// least an hour, so a re-publish after a crash is dropped by the server;
// upstream leaves the server's default of 2 minutes).
const DuplicateWindow = time.Hour

// DefaultExecMaxConsumers is the max_consumers the EXEC stream is created
// with (ours; upstream leaves it unset, which nats-server turns into its
// default of 1,000 per stream): one durable consumer per agent, for fleets
// of up to a million agents. It fits upstream's i32 field.
const DefaultExecMaxConsumers = 1_000_000

// optional names what provisioning creates but Check does not require: the
// agent-side scheduler's buckets and the collect bundles' store, which a
// server bootstrapped by an older upstream backend may lack; the agent
// starts without them.
var optional = map[string]bool{
	subject.BucketSchedules: true, subject.BucketJobs: true, subject.BucketFleetConfig: true,
	subject.ObjectCollections: true,
}

// Options say how what is missing is created. The zero value creates
// everything with the protocol's settings on a single server.
type Options struct {
	// Replicas is the number of replicas of every stream, bucket and
	// object store created: 0 means 1 (a single server); use 3 on a
	// JetStream cluster. At most 5 (nats-server's limit). What exists
	// keeps its replicas; with Replicas set, a different count is
	// reported as a Difference.
	Replicas int
	// Budget, when positive and below LimitBytes, scales the byte limits
	// of the streams and object stores created down in proportion so that
	// they sum to at most Budget (each at least 1 MiB), for a server whose
	// JetStream store is small (see ScaleStreams).
	Budget int64
	// ExecMaxConsumers is the max_consumers of the EXEC stream when it is
	// created: 0 means DefaultExecMaxConsumers; -1 leaves it unset (the
	// server's default_max_consumers, 1,000 unless configured, applies).
	// It is lowered to the account's consumer limit when the account has
	// one (the server refuses a stream limit above it).
	ExecMaxConsumers int
}

// Validate reports options that cannot be used.
func (o Options) Validate() error {
	switch {
	case o.Replicas < 0 || o.Replicas > 5:
		return fmt.Errorf("provision: %d replicas: want 1 to 5 (0 means 1)", o.Replicas)
	case o.Budget < 0:
		return fmt.Errorf("provision: negative budget %d", o.Budget)
	case o.ExecMaxConsumers < -1:
		return fmt.Errorf("provision: exec max consumers %d: want -1, 0 or more", o.ExecMaxConsumers)
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.ExecMaxConsumers == 0 {
		o.ExecMaxConsumers = DefaultExecMaxConsumers
	}
	if o.ExecMaxConsumers < 0 {
		o.ExecMaxConsumers = 0
	}
}

// Streams returns the configuration of every stream of the protocol: the
// subjects, retention and limits of upstream's bootstrap, plus our
// duplicate window on the streams the agent's outboxes publish to and
// EXEC's consumer limit (DefaultExecMaxConsumers).
func Streams() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{Name: subject.StreamExec, Subjects: []string{subject.CommandsWildcard}, MaxMsgsPerSubject: 1,
			MaxAge: 7 * day, MaxBytes: 64 * mib, Discard: jetstream.DiscardOld, Storage: jetstream.FileStorage,
			MaxConsumers: DefaultExecMaxConsumers},
		{Name: subject.StreamResults, Subjects: []string{subject.ResultsWildcard}, MaxAge: 30 * day,
			MaxBytes: 2 * gib, Discard: jetstream.DiscardOld, Duplicates: DuplicateWindow, Storage: jetstream.FileStorage},
		{Name: subject.StreamEvents, Subjects: []string{subject.EventsWildcard}, MaxAge: 7 * day,
			MaxBytes: 256 * mib, Discard: jetstream.DiscardOld, Duplicates: DuplicateWindow, Storage: jetstream.FileStorage},
		{Name: subject.StreamObs, Subjects: []string{subject.ObsWildcard}, MaxAge: 90 * day,
			MaxBytes: 512 * mib, Discard: jetstream.DiscardOld, Duplicates: DuplicateWindow, Storage: jetstream.FileStorage},
		{Name: subject.StreamInventory, Subjects: []string{subject.InventoryAll}, MaxAge: 90 * day,
			MaxBytes: 1 * gib, Discard: jetstream.DiscardOld, Duplicates: DuplicateWindow, Storage: jetstream.FileStorage},
	}
}

// Buckets returns the configuration of every KV bucket of the protocol,
// with upstream's history: 5 revisions for script_current, script_status,
// schedules and jobs, 1 for agent_config, agent_groups,
// agent_groups_derived and fleet_config (only the current value is read).
func Buckets() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: subject.BucketConfig, History: 1, Storage: jetstream.FileStorage},
		{Bucket: subject.BucketGroups, History: 1, Storage: jetstream.FileStorage},
		{Bucket: subject.BucketGroupsDerived, History: 1, Storage: jetstream.FileStorage},
		{Bucket: subject.BucketScriptCurrent, History: 5, Storage: jetstream.FileStorage},
		{Bucket: subject.BucketScriptStatus, History: 5, Storage: jetstream.FileStorage},
		{Bucket: subject.BucketSchedules, History: 5, Storage: jetstream.FileStorage},
		{Bucket: subject.BucketJobs, History: 5, Storage: jetstream.FileStorage},
		{Bucket: subject.BucketFleetConfig, History: 1, Storage: jetstream.FileStorage},
	}
}

// ObjectStores returns the configuration of every object store of the
// protocol: result_output keeps 30 days within 1 GiB and collections 30
// days within 5 GiB, as upstream; the others have no limit.
func ObjectStores() []jetstream.ObjectStoreConfig {
	return []jetstream.ObjectStoreConfig{
		{Bucket: subject.ObjectReleases, Storage: jetstream.FileStorage},
		{Bucket: subject.ObjectResultOutput, Storage: jetstream.FileStorage, TTL: 30 * day, MaxBytes: 1 * gib},
		{Bucket: subject.ObjectScripts, Storage: jetstream.FileStorage},
		{Bucket: subject.ObjectCollections, Storage: jetstream.FileStorage, TTL: 30 * day, MaxBytes: 5 * gib},
	}
}

// StreamBytes is the sum of the MaxBytes limits of Streams (about 3.9 GiB).
func StreamBytes() int64 {
	var n int64
	for _, c := range Streams() {
		n += c.MaxBytes
	}
	return n
}

// LimitBytes is the sum of every byte limit provisioning sets: Streams'
// and ObjectStores' MaxBytes (about 9.9 GiB). JetStream reserves each
// limit in its store when the stream is created, so a store smaller than
// this needs a Budget.
func LimitBytes() int64 {
	n := StreamBytes()
	for _, c := range ObjectStores() {
		n += c.MaxBytes
	}
	return n
}

// scaled returns n scaled by budget/LimitBytes, at least 1 MiB; n itself
// when budget <= 0 or budget >= LimitBytes.
func scaled(n, budget int64) int64 {
	total := LimitBytes()
	if budget <= 0 || budget >= total || n <= 0 {
		return n
	}
	return max(int64(float64(n)*float64(budget)/float64(total)), mib)
}

// ScaleStreams returns Streams with every MaxBytes scaled down by
// budget/LimitBytes, the factor that makes the streams' and the object
// stores' limits together sum to at most budget bytes (each at least
// 1 MiB); budget <= 0 or a budget above LimitBytes leaves them unchanged.
// A single-machine server on a small disk uses it: JetStream refuses a
// stream whose limit does not fit its store.
func ScaleStreams(budget int64) []jetstream.StreamConfig {
	cfgs := Streams()
	for i := range cfgs {
		cfgs[i].MaxBytes = scaled(cfgs[i].MaxBytes, budget)
	}
	return cfgs
}

// ScaleObjectStores returns ObjectStores with every MaxBytes scaled by the
// factor ScaleStreams applies for budget (so result_output's 1 GiB becomes
// about a tenth of budget, collections' 5 GiB about half); budget <= 0 or
// above LimitBytes leaves them unchanged.
func ScaleObjectStores(budget int64) []jetstream.ObjectStoreConfig {
	cfgs := ObjectStores()
	for i := range cfgs {
		cfgs[i].MaxBytes = scaled(cfgs[i].MaxBytes, budget)
	}
	return cfgs
}

// Kinds of Report entries.
const (
	KindStream      = "stream"
	KindBucket      = "bucket"
	KindObjectStore = "object store"
)

// Difference is one setting of an existing stream, bucket or object store
// that is not what provisioning would have created. It is reported, never
// changed.
type Difference struct {
	// Kind is KindStream, KindBucket or KindObjectStore.
	Kind string
	// Name is the stream, bucket or object store name.
	Name string
	// Field is the setting: subjects, retention, max_msgs_per_subject,
	// max_age, max_bytes, discard, duplicate_window, max_consumers (EXEC),
	// storage, replicas (when Options.Replicas is set), history (buckets)
	// or ttl (buckets, object stores).
	Field string
	// Have is the server's value, Want ours, formatted for people
	// ("30d", "2 GiB", "none", "5").
	Have, Want string
}

// String describes d, such as "bucket script_current: history is 5 (provision creates 1)".
func (d Difference) String() string {
	return fmt.Sprintf("%s %s: %s is %s (provision creates %s)", d.Kind, d.Name, d.Field, d.Have, d.Want)
}

// Report is what Provision did: what it created, what it found, and how
// what it found differs from what it would have created.
type Report struct {
	// Created lists what was missing and was created, as "stream EXEC",
	// "bucket agent_config", "object store scripts".
	Created []string
	// Existing lists what was there already, in the same form; none of it
	// was changed.
	Existing []string
	// Missing lists what does not exist and was not created (Inspect).
	Missing []string
	// Differences lists the settings of Existing that differ from ours.
	Differences []Difference
}

// Provision creates every stream, bucket and object store of the protocol
// that is missing, with the streams' and object stores' byte limits scaled
// to budget (see ScaleStreams; budget <= 0 means the protocol's limits),
// and compares the settings of those that exist with ours. It never
// updates anything that exists. It stops at the first error, which names
// what failed; the Report holds what was done until then.
//
// An object store created by someone else between the check and the
// creation can be updated by the creation (nats.go creates object stores
// with create-or-update); the window is one round trip.
func Provision(ctx context.Context, js jetstream.JetStream, budget int64) (Report, error) {
	return ProvisionWith(ctx, js, Options{Budget: budget})
}

// ProvisionWith is Provision with opts: replicas, budget and EXEC's
// consumer limit for what it creates (Options).
func ProvisionWith(ctx context.Context, js jetstream.JetStream, opts Options) (Report, error) {
	return run(ctx, js, opts, true)
}

// Inspect is Provision without creating anything: what is missing is
// listed in Report.Missing. It changes nothing on the server.
func Inspect(ctx context.Context, js jetstream.JetStream, budget int64) (Report, error) {
	return InspectWith(ctx, js, Options{Budget: budget})
}

// InspectWith is Inspect comparing with what ProvisionWith(opts) would create.
func InspectWith(ctx context.Context, js jetstream.JetStream, opts Options) (Report, error) {
	return run(ctx, js, opts, false)
}

// execMaxConsumers returns want lowered to the account's consumer limit,
// when the account has one (the server refuses a stream limit above it).
func execMaxConsumers(ctx context.Context, js jetstream.JetStream, want, replicas int) int {
	if want <= 0 {
		return want
	}
	info, err := js.AccountInfo(ctx)
	if err != nil {
		return want // the stream creation reports a real problem
	}
	limit := info.Limits.MaxConsumers
	if t, ok := info.Tiers["R"+strconv.Itoa(replicas)]; ok && t.Limits.MaxConsumers > 0 {
		limit = t.Limits.MaxConsumers
	}
	if limit > 0 && limit < want {
		return limit
	}
	return want
}

// run is Provision, creating what is missing when create is set.
func run(ctx context.Context, js jetstream.JetStream, opts Options, create bool) (Report, error) {
	if err := opts.Validate(); err != nil {
		return Report{}, err
	}
	explicitReplicas := opts.Replicas != 0
	opts.setDefaults()
	var rep Report
	for _, cfg := range ScaleStreams(opts.Budget) {
		cfg.Replicas = opts.Replicas
		if cfg.Name == subject.StreamExec {
			cfg.MaxConsumers = opts.ExecMaxConsumers
		}
		st, err := js.Stream(ctx, cfg.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) && !create {
			rep.Missing = append(rep.Missing, KindStream+" "+cfg.Name)
			continue
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if cfg.MaxConsumers > 0 {
				cfg.MaxConsumers = execMaxConsumers(ctx, js, cfg.MaxConsumers, cfg.Replicas)
			}
			st, err = js.CreateStream(ctx, cfg)
			if err == nil {
				rep.Created = append(rep.Created, KindStream+" "+cfg.Name)
				continue
			}
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created meanwhile
				st, err = js.Stream(ctx, cfg.Name)
			}
		}
		if err != nil {
			return rep, fmt.Errorf("provision: stream %s: %w", cfg.Name, err)
		}
		rep.Existing = append(rep.Existing, KindStream+" "+cfg.Name)
		rep.Differences = append(rep.Differences, diffStream(KindStream, cfg.Name, st.CachedInfo().Config, cfg, explicitReplicas)...)
	}
	for _, cfg := range Buckets() {
		cfg.Replicas = opts.Replicas
		_, err := js.KeyValue(ctx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) && !create {
			rep.Missing = append(rep.Missing, KindBucket+" "+cfg.Bucket)
			continue
		}
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			if _, err = js.CreateKeyValue(ctx, cfg); err == nil {
				rep.Created = append(rep.Created, KindBucket+" "+cfg.Bucket)
				continue
			}
			if errors.Is(err, jetstream.ErrBucketExists) { // created meanwhile, otherwise
				err = nil
			}
		}
		if err != nil {
			return rep, fmt.Errorf("provision: bucket %s: %w", cfg.Bucket, err)
		}
		have, err := backing(ctx, js, "KV_"+cfg.Bucket)
		if err != nil {
			return rep, fmt.Errorf("provision: bucket %s: %w", cfg.Bucket, err)
		}
		rep.Existing = append(rep.Existing, KindBucket+" "+cfg.Bucket)
		rep.Differences = append(rep.Differences, diffBucket(cfg, have, explicitReplicas)...)
	}
	for _, cfg := range ScaleObjectStores(opts.Budget) {
		cfg.Replicas = opts.Replicas
		_, err := js.ObjectStore(ctx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) && !create {
			rep.Missing = append(rep.Missing, KindObjectStore+" "+cfg.Bucket)
			continue
		}
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			if _, err = js.CreateObjectStore(ctx, cfg); err == nil {
				rep.Created = append(rep.Created, KindObjectStore+" "+cfg.Bucket)
				continue
			}
		}
		if err != nil {
			return rep, fmt.Errorf("provision: object store %s: %w", cfg.Bucket, err)
		}
		have, err := backing(ctx, js, "OBJ_"+cfg.Bucket)
		if err != nil {
			return rep, fmt.Errorf("provision: object store %s: %w", cfg.Bucket, err)
		}
		rep.Existing = append(rep.Existing, KindObjectStore+" "+cfg.Bucket)
		rep.Differences = append(rep.Differences, diffObjectStore(cfg, have, explicitReplicas)...)
	}
	return rep, nil
}

// backing returns the configuration of the stream behind a bucket or object store.
func backing(ctx context.Context, js jetstream.JetStream, stream string) (jetstream.StreamConfig, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return jetstream.StreamConfig{}, err
	}
	return st.CachedInfo().Config, nil
}

// Ensure creates every stream, bucket and object store of the protocol
// that is missing, and changes nothing that exists (see Provision, which
// also reports how what exists differs). It stops at the first error,
// which names what failed.
func Ensure(ctx context.Context, js jetstream.JetStream) error {
	return EnsureWithin(ctx, js, 0)
}

// EnsureWithin is Ensure with the byte limits of what it creates scaled to
// fit budget bytes (see ScaleStreams); budget <= 0 means the protocol's
// limits.
func EnsureWithin(ctx context.Context, js jetstream.JetStream, budget int64) error {
	return EnsureWith(ctx, js, Options{Budget: budget})
}

// EnsureWith is Ensure with opts (replicas, budget, EXEC's consumer limit).
func EnsureWith(ctx context.Context, js jetstream.JetStream, opts Options) error {
	_, err := ProvisionWith(ctx, js, opts)
	return err
}

// Check reports the first stream, bucket or object store the agent needs
// that does not exist on the server, as an error wrapping the jetstream
// not-found error; nil means everything the agent needs is there. The
// scheduler's buckets (schedules, jobs, fleet_config) and the collections
// object store are created by provisioning but not required here: a server
// bootstrapped by an older upstream backend may lack them, and the agent
// runs without them.
func Check(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range Streams() {
		if _, err := js.Stream(ctx, cfg.Name); err != nil {
			return fmt.Errorf("provision: stream %s: %w", cfg.Name, err)
		}
	}
	for _, cfg := range Buckets() {
		if optional[cfg.Bucket] {
			continue
		}
		if _, err := js.KeyValue(ctx, cfg.Bucket); err != nil {
			return fmt.Errorf("provision: bucket %s: %w", cfg.Bucket, err)
		}
	}
	for _, cfg := range ObjectStores() {
		if optional[cfg.Bucket] {
			continue
		}
		if _, err := js.ObjectStore(ctx, cfg.Bucket); err != nil {
			return fmt.Errorf("provision: object store %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}

// differ collects Differences of one stream, bucket or object store.
type differ struct {
	kind, name string
	out        []Difference
}

func (d *differ) add(field, have, want string) {
	if have != want {
		d.out = append(d.out, Difference{Kind: d.kind, Name: d.name, Field: field, Have: have, Want: want})
	}
}

// diffStream compares an existing stream's configuration with want;
// replicas only when asked for.
func diffStream(kind, name string, have, want jetstream.StreamConfig, replicas bool) []Difference {
	d := differ{kind: kind, name: name}
	hs, ws := slices.Clone(have.Subjects), slices.Clone(want.Subjects)
	slices.Sort(hs)
	slices.Sort(ws)
	d.add("subjects", strings.Join(hs, " "), strings.Join(ws, " "))
	d.add("retention", have.Retention.String(), want.Retention.String())
	d.add("max_msgs_per_subject", count(have.MaxMsgsPerSubject), count(want.MaxMsgsPerSubject))
	d.add("max_age", age(have.MaxAge), age(want.MaxAge))
	d.add("max_bytes", size(have.MaxBytes), size(want.MaxBytes))
	d.add("discard", have.Discard.String(), want.Discard.String())
	if want.Duplicates > 0 { // else the server's default
		d.add("duplicate_window", age(have.Duplicates), age(want.Duplicates))
	}
	if want.MaxConsumers > 0 {
		d.add("max_consumers", count(int64(have.MaxConsumers)), count(int64(want.MaxConsumers)))
	}
	d.add("storage", have.Storage.String(), want.Storage.String())
	if replicas {
		d.add("replicas", strconv.Itoa(max(have.Replicas, 1)), strconv.Itoa(want.Replicas))
	}
	return d.out
}

// diffBucket compares the stream behind an existing bucket with want.
func diffBucket(want jetstream.KeyValueConfig, have jetstream.StreamConfig, replicas bool) []Difference {
	d := differ{kind: KindBucket, name: want.Bucket}
	history := int64(max(want.History, 1))
	d.add("history", count(have.MaxMsgsPerSubject), count(history))
	d.add("ttl", age(have.MaxAge), age(want.TTL))
	d.add("max_bytes", size(have.MaxBytes), size(want.MaxBytes))
	d.add("storage", have.Storage.String(), want.Storage.String())
	if replicas {
		d.add("replicas", strconv.Itoa(max(have.Replicas, 1)), strconv.Itoa(want.Replicas))
	}
	return d.out
}

// diffObjectStore compares the stream behind an existing object store with want.
func diffObjectStore(want jetstream.ObjectStoreConfig, have jetstream.StreamConfig, replicas bool) []Difference {
	d := differ{kind: KindObjectStore, name: want.Bucket}
	d.add("ttl", age(have.MaxAge), age(want.TTL))
	d.add("max_bytes", size(have.MaxBytes), size(want.MaxBytes))
	d.add("storage", have.Storage.String(), want.Storage.String())
	if replicas {
		d.add("replicas", strconv.Itoa(max(have.Replicas, 1)), strconv.Itoa(want.Replicas))
	}
	return d.out
}

// count formats a message count limit: "none" when not positive.
func count(n int64) string {
	if n <= 0 {
		return "none"
	}
	return strconv.FormatInt(n, 10)
}

// age formats a duration limit: "none" for 0, whole days as "30d".
func age(d time.Duration) string {
	switch {
	case d <= 0:
		return "none"
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

// size formats a byte limit: "none" when not positive, else exact binary
// units where they fit ("2 GiB", "64 MiB") and bytes otherwise.
func size(n int64) string {
	switch {
	case n <= 0:
		return "none"
	case n%gib == 0:
		return strconv.FormatInt(n/gib, 10) + " GiB"
	case n%mib == 0:
		return strconv.FormatInt(n/mib, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}
