package execconsumer_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/execconsumer"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go/jetstream"
)

func TestFilters(t *testing.T) {
	for _, tc := range []struct {
		name   string
		groups []string
		want   []string
	}{
		{"no groups", nil, []string{"commands.all", "commands.pc.pc-1"}},
		{"sorted, unique", []string{"ops", "lab", "ops"}, []string{"commands.all", "commands.pc.pc-1", "commands.group.lab", "commands.group.ops"}},
		{"invalid names left out", []string{"a.b", "*", "", "x y", "ok"}, []string{"commands.all", "commands.pc.pc-1", "commands.group.ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := execconsumer.Filters("pc-1", tc.groups)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Filters = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, pc := range []string{"", "a.b", "a/b", "*"} {
		if _, err := execconsumer.Config(pc, nil); !errors.Is(err, subject.ErrInvalidToken) {
			t.Errorf("Config(%q): %v, want an invalid token", pc, err)
		}
	}
}

func TestGroupsUnion(t *testing.T) {
	got := execconsumer.Groups([]string{"b", "a"}, []string{"a", "c", "bad.name"}, nil)
	if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("Groups = %q, want %q", got, want)
	}
}

func TestDifferences(t *testing.T) {
	want, _ := execconsumer.Config("pc-1", []string{"lab"})
	same := want
	same.FilterSubjects = []string{"commands.group.lab", "commands.pc.pc-1", "commands.all"} // order does not matter
	if d := execconsumer.Differences(same, want); d != nil {
		t.Errorf("reordered filters: %q", d)
	}
	single := jetstream.ConsumerConfig{Durable: "agent-pc-1", FilterSubject: "commands.pc.pc-1",
		DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckNonePolicy, AckWait: time.Minute}
	got := execconsumer.Differences(single, want)
	wantD := []string{"filters: +commands.all +commands.group.lab", "deliver_policy: all, want last_per_subject",
		"ack_policy: AckNone, want AckExplicit", "ack_wait: 1m0s, want 30s", "max_ack_pending: 0, want 1024"}
	if !slices.Equal(got, wantD) {
		t.Errorf("Differences = %q\nwant %q", got, wantD)
	}
}

func ExampleConfig() {
	cfg, err := execconsumer.Config("lab-pc-07", execconsumer.Groups([]string{"lab"}, []string{"site-1", "lab"}))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Durable, cfg.DeliverPolicy, cfg.AckPolicy, cfg.AckWait, cfg.MaxAckPending)
	fmt.Println(cfg.FilterSubjects)
	missing, extra := execconsumer.Diff([]string{"commands.all", "commands.pc.lab-pc-07", "commands.group.old"}, cfg.FilterSubjects)
	fmt.Println(missing, extra)
	// Output:
	// agent-lab-pc-07 last_per_subject AckExplicit 30s 1024
	// [commands.all commands.pc.lab-pc-07 commands.group.lab commands.group.site-1]
	// [commands.group.lab commands.group.site-1] [commands.group.old]
}
