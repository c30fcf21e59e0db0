package execconsumer

import (
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go/jetstream"
)

// The consumer's settings besides its name and filters.
const (
	// AckWait is how long the server waits for the ack of a delivered
	// command before delivering it again.
	AckWait = 30 * time.Second
	// MaxAckPending bounds the commands delivered and not yet acknowledged.
	MaxAckPending = 1024
)

// Name returns the consumer's name, agent-<pcID>, or a *subject.TokenError
// when pcID cannot be part of one.
func Name(pcID string) (string, error) { return subject.ExecConsumer(pcID) }

// Groups returns the effective groups of lists (a PC's agent_groups and
// agent_groups_derived lists): their union, sorted, without duplicates,
// without the names that are not valid subject tokens.
func Groups(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, g := range l {
			if subject.ValidToken("group", g) == nil {
				out = append(out, g)
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Filters returns the filter subjects of pcID's consumer for its effective
// groups: commands.all, commands.pc.<pcID>, then commands.group.<g> for
// each of Groups(groups) in order. It fails only for an invalid pcID.
func Filters(pcID string, groups []string) ([]string, error) {
	pc, err := subject.CommandsPC(pcID)
	if err != nil {
		return nil, err
	}
	out := []string{subject.CommandsAll, pc}
	for _, g := range Groups(groups) {
		if s, err := subject.CommandsGroup(g); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// Config returns the configuration of pcID's consumer for its effective
// groups: durable Name(pcID), Filters(pcID, groups), deliver policy last
// per subject, explicit acks, AckWait and MaxAckPending. It fails only for
// an invalid pcID.
func Config(pcID string, groups []string) (jetstream.ConsumerConfig, error) {
	name, err := Name(pcID)
	if err != nil {
		return jetstream.ConsumerConfig{}, err
	}
	filters, err := Filters(pcID, groups)
	if err != nil {
		return jetstream.ConsumerConfig{}, err
	}
	return jetstream.ConsumerConfig{
		Durable:        name,
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        AckWait,
		MaxAckPending:  MaxAckPending,
		FilterSubjects: filters,
	}, nil
}

// FiltersOf returns the filter subjects of a consumer configuration as a
// list: FilterSubjects, or the single FilterSubject; nil for a consumer of
// the whole stream.
func FiltersOf(c jetstream.ConsumerConfig) []string {
	if len(c.FilterSubjects) > 0 {
		return slices.Clone(c.FilterSubjects)
	}
	if c.FilterSubject != "" {
		return []string{c.FilterSubject}
	}
	return nil
}

// Diff compares the filters a consumer has with those it should have:
// missing are in want and not in have, extra in have and not in want, each
// sorted. Order does not matter: the server delivers the same either way.
func Diff(have, want []string) (missing, extra []string) {
	h, w := set(have), set(want)
	for s := range w {
		if !h[s] {
			missing = append(missing, s)
		}
	}
	for s := range h {
		if !w[s] {
			extra = append(extra, s)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

func set(l []string) map[string]bool {
	m := make(map[string]bool, len(l))
	for _, s := range l {
		m[s] = true
	}
	return m
}

// Differences lists how have, an existing consumer's configuration,
// differs from want in what Config sets (the filters as sets, the deliver
// and ack policies, the ack wait and max ack pending), one human-readable
// item each, such as "filters: +commands.group.lab -commands.group.old"
// or "ack_wait: 1m0s, want 30s". Nil means no update is needed.
func Differences(have, want jetstream.ConsumerConfig) []string {
	var out []string
	if missing, extra := Diff(FiltersOf(have), FiltersOf(want)); len(missing)+len(extra) > 0 {
		d := "filters:"
		for _, s := range missing {
			d += " +" + s
		}
		for _, s := range extra {
			d += " -" + s
		}
		out = append(out, d)
	}
	if have.DeliverPolicy != want.DeliverPolicy {
		out = append(out, "deliver_policy: "+have.DeliverPolicy.String()+", want "+want.DeliverPolicy.String())
	}
	if have.AckPolicy != want.AckPolicy {
		out = append(out, "ack_policy: "+have.AckPolicy.String()+", want "+want.AckPolicy.String())
	}
	if have.AckWait != want.AckWait {
		out = append(out, "ack_wait: "+have.AckWait.String()+", want "+want.AckWait.String())
	}
	if have.MaxAckPending != want.MaxAckPending {
		out = append(out, "max_ack_pending: "+strconv.Itoa(have.MaxAckPending)+", want "+strconv.Itoa(want.MaxAckPending))
	}
	return out
}
