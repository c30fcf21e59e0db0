package agent_test

// Helpers of the job-manifest feature tests (emit watermark, check,
// collect, finalize); the tests are in jobfeat_unix_test.go and
// jobfeat_windows_test.go.

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// obsFrom returns the ObsEvents of pcID with the given source, in stream order.
func (e *env) obsFrom(pcID, source string) ([]wire.ObsEvent, error) {
	all, err := e.obsEvents(pcID)
	var out []wire.ObsEvent
	for _, ev := range all {
		if ev.Source == source {
			out = append(out, ev)
		}
	}
	return out, err
}

// collectionsBucket returns the collections object store (provisioned
// with the rest; created here when the test server lacks it).
func (e *env) collectionsBucket() jetstream.ObjectStore {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	os, err := e.js.ObjectStore(ctx, subject.ObjectCollections)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		os, err = e.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: subject.ObjectCollections})
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return os
}

// zipEntries downloads key from store and returns its entries' contents.
func zipEntries(t *testing.T, store jetstream.ObjectStore, key string) map[string]string {
	t.Helper()
	b, err := store.GetBytes(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		c, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = string(c)
	}
	return out
}

// objectNames lists the objects of store.
func objectNames(t *testing.T, store jetstream.ObjectStore) []string {
	t.Helper()
	infos, err := store.List(context.Background())
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range infos {
		out = append(out, i.Name)
	}
	sort.Strings(out)
	return out
}

// putFile writes content to path, creating it.
func putFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitObs waits until pcID has n events from source.
func (e *env) waitObs(pcID, source string, n int) []wire.ObsEvent {
	e.t.Helper()
	var evs []wire.ObsEvent
	natstest.CheckFor(e.t, 20*time.Second, 20*time.Millisecond, func() error {
		var err error
		if evs, err = e.obsFrom(pcID, source); err != nil {
			return err
		}
		if len(evs) < n {
			return fmt.Errorf("%d events from %s, want %d", len(evs), source, n)
		}
		return nil
	})
	return evs
}
