// Package provision creates the JetStream streams, KV buckets and object
// stores of the kanade protocol on a server, with the limits PROTOCOL.md
// gives. The agent uses it when it runs its own embedded server; a backend or
// test harness can call it too. Ensure is idempotent: it creates what is
// missing and updates what exists to the documented configuration.
package provision

import (
	"context"
	"fmt"
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
// least an hour, so a re-publish after a crash is dropped by the server).
const DuplicateWindow = time.Hour

// Streams returns the configuration of every stream of the protocol.
func Streams() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{Name: subject.StreamExec, Subjects: []string{subject.CommandsWildcard}, MaxMsgsPerSubject: 1,
			MaxAge: 7 * day, MaxBytes: 64 * mib, Discard: jetstream.DiscardOld, Storage: jetstream.FileStorage},
		{Name: subject.StreamResults, Subjects: []string{subject.ResultsWildcard}, MaxAge: 30 * day,
			MaxBytes: 2 * gib, Duplicates: DuplicateWindow, Storage: jetstream.FileStorage},
		{Name: subject.StreamEvents, Subjects: []string{subject.EventsWildcard}, MaxAge: 7 * day,
			MaxBytes: 256 * mib, Duplicates: DuplicateWindow, Storage: jetstream.FileStorage},
		{Name: subject.StreamObs, Subjects: []string{subject.ObsWildcard}, MaxAge: 90 * day,
			MaxBytes: 512 * mib, Duplicates: DuplicateWindow, Storage: jetstream.FileStorage},
		{Name: subject.StreamInventory, Subjects: []string{subject.InventoryAll}, MaxAge: 90 * day,
			MaxBytes: 1 * gib, Duplicates: DuplicateWindow, Storage: jetstream.FileStorage},
	}
}

// Buckets returns the configuration of every KV bucket of the protocol.
func Buckets() []jetstream.KeyValueConfig {
	names := []string{subject.BucketConfig, subject.BucketGroups, subject.BucketGroupsDerived,
		subject.BucketScriptCurrent, subject.BucketScriptStatus}
	out := make([]jetstream.KeyValueConfig, len(names))
	for i, n := range names {
		out[i] = jetstream.KeyValueConfig{Bucket: n, History: 1, Storage: jetstream.FileStorage}
	}
	return out
}

// ObjectStores returns the configuration of every object store of the protocol.
func ObjectStores() []jetstream.ObjectStoreConfig {
	return []jetstream.ObjectStoreConfig{
		{Bucket: subject.ObjectReleases, Storage: jetstream.FileStorage},
		{Bucket: subject.ObjectResultOutput, Storage: jetstream.FileStorage, TTL: 30 * day},
		{Bucket: subject.ObjectScripts, Storage: jetstream.FileStorage},
	}
}

// Ensure creates or updates every stream, bucket and object store of the
// protocol. It stops at the first error, which names what failed.
func Ensure(ctx context.Context, js jetstream.JetStream) error {
	return EnsureWithin(ctx, js, 0)
}

// StreamBytes is the sum of the MaxBytes limits of Streams (about 3.9 GiB).
func StreamBytes() int64 {
	var n int64
	for _, c := range Streams() {
		n += c.MaxBytes
	}
	return n
}

// ScaleStreams returns Streams with every MaxBytes scaled down in
// proportion so that they sum to at most budget bytes (each at least
// 1 MiB); budget <= 0 or a budget above StreamBytes leaves them unchanged.
// A single-machine server on a small disk uses it: JetStream refuses a
// stream whose limit does not fit its store.
func ScaleStreams(budget int64) []jetstream.StreamConfig {
	cfgs := Streams()
	total := StreamBytes()
	if budget <= 0 || budget >= total {
		return cfgs
	}
	for i := range cfgs {
		cfgs[i].MaxBytes = max(int64(float64(cfgs[i].MaxBytes)*float64(budget)/float64(total)), mib)
	}
	return cfgs
}

// EnsureWithin is Ensure with the streams' MaxBytes scaled to fit budget
// bytes (see ScaleStreams); budget <= 0 means the protocol's limits.
func EnsureWithin(ctx context.Context, js jetstream.JetStream, budget int64) error {
	for _, cfg := range ScaleStreams(budget) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("provision: stream %s: %w", cfg.Name, err)
		}
	}
	for _, cfg := range Buckets() {
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("provision: bucket %s: %w", cfg.Bucket, err)
		}
	}
	for _, cfg := range ObjectStores() {
		if _, err := js.CreateOrUpdateObjectStore(ctx, cfg); err != nil {
			return fmt.Errorf("provision: object store %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}

// Check reports the first stream, bucket or object store of the protocol
// that does not exist on the server, as an error wrapping the jetstream
// not-found error; nil means everything the agent needs is there.
func Check(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range Streams() {
		if _, err := js.Stream(ctx, cfg.Name); err != nil {
			return fmt.Errorf("provision: stream %s: %w", cfg.Name, err)
		}
	}
	for _, cfg := range Buckets() {
		if _, err := js.KeyValue(ctx, cfg.Bucket); err != nil {
			return fmt.Errorf("provision: bucket %s: %w", cfg.Bucket, err)
		}
	}
	for _, cfg := range ObjectStores() {
		if _, err := js.ObjectStore(ctx, cfg.Bucket); err != nil {
			return fmt.Errorf("provision: object store %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}
