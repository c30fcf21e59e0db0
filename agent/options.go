package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/kanade/kanade-agent/inventory"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// Version is the agent version reported in heartbeats when Options.Version
// is empty. The daemon sets it at link time.
var Version = "dev"

// ObsSource is an extra source of ObsEvents supplied by a host program. Run
// is started once the agent runs and must return when ctx ends; it hands
// each event to emit, which stores it durably in the obs outbox (the agent
// overwrites PcID) and returns nil once it is on disk. A returned error other
// than ctx's ends only that source, which is logged.
type ObsSource interface {
	Run(ctx context.Context, emit func(context.Context, wire.ObsEvent) error) error
}

// ObsSourceFunc adapts a function to ObsSource.
type ObsSourceFunc func(ctx context.Context, emit func(context.Context, wire.ObsEvent) error) error

// Run calls f.
func (f ObsSourceFunc) Run(ctx context.Context, emit func(context.Context, wire.ObsEvent) error) error {
	return f(ctx, emit)
}

// Credentials selects how the agent authenticates to NATS. At most one of
// Token, User/Password, CredsFile and NKeySeedFile is used; TLS may be
// combined with any of them.
type Credentials struct {
	// Token is a NATS auth token.
	Token string
	// User and Password are NATS user credentials.
	User, Password string
	// CredsFile is a NATS .creds file (JWT and nkey seed).
	CredsFile string
	// NKeySeedFile is a file holding an nkey seed. It is read once, when Run
	// starts (a missing file fails Run); a CredsFile is read at every connect.
	NKeySeedFile string
	// CAFile is a PEM file of root CAs to trust for the server certificate.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and key.
	CertFile, KeyFile string
	// TLSConfig, when set, is used as is (CAFile, CertFile and KeyFile are ignored).
	TLSConfig *tls.Config
}

// DefaultInboxPrefix is Options.InboxPrefix's default, nats.go's own.
const DefaultInboxPrefix = "_INBOX"

// Options configures an Agent. The zero value of every field but DataDir
// has a documented default.
type Options struct {
	// PcID identifies this agent in subjects. Default: the host name,
	// lower-cased with invalid characters replaced (subject.SanitizePcID).
	PcID string
	// DataDir holds the outboxes, the dedup ledger and staged scripts. Required.
	DataDir string
	// Servers lists NATS server URLs (a cluster); default nats://127.0.0.1:4222.
	// Must be empty when Conn is set.
	Servers []string
	// Credentials authenticate to NATS. Must be zero when Conn is set.
	Credentials Credentials
	// NATSOptions are appended after the agent's own nats.Options. For a
	// server in the same process (package embedded), with no network port:
	// Servers {embedded.InProcessURL}, NATSOptions srv.ConnectOptions().
	// Must be empty when Conn is set.
	NATSOptions []nats.Option
	// Conn, when set, is an existing connection the agent uses instead of
	// dialling one: several agents of one process may share it. It stays
	// the caller's: the agent never closes it, never drains it and never
	// changes its handlers or options; it follows its state (for the
	// heartbeats, the outbox drains and the KV resync after a reconnect)
	// through nats.Conn.StatusChanged listeners, removed when Run returns.
	// Its subscriptions, consumers and watchers are removed when Run
	// returns. Set, Servers, Credentials, NATSOptions and InboxPrefix must
	// be empty (Validate refuses them): how the connection authenticates,
	// reconnects and names its inboxes is the caller's business. Give it
	// reconnection (nats.MaxReconnects(-1), nats.RetryOnFailedConnect) as
	// the agent's own connection has; if it is closed while the agent runs,
	// Run stops and returns an error wrapping nats.ErrConnectionClosed
	// (nothing is lost: the outboxes and the ledger are on disk), as it
	// does if its own connection closes (NATSOptions with a reconnect limit).
	Conn *nats.Conn
	// InboxPrefix is the prefix of the connection's reply subjects
	// (nats.CustomInboxPrefix) when the agent dials: the replies to its
	// JetStream API requests and KV watches arrive under it. Default
	// "_INBOX". A server that limits each PC to its own subjects can give
	// each agent its own, e.g. "_INBOX.<pc_id>", and allow it only that
	// prefix. It must be a valid subject without wildcards and must be empty
	// when Conn is set (the caller's connection has its own).
	InboxPrefix string
	// JSDomain is the JetStream domain of the server holding the protocol's
	// streams, buckets and object stores, for an agent connected to a leaf
	// node whose own JetStream domain differs (a branch office): the
	// agent's JetStream API requests then go to $JS.<JSDomain>.API
	// (jetstream.NewWithDomain). Default empty: the JetStream of the
	// server the agent is connected to ($JS.API). Applies with Conn too.
	JSDomain string
	// ExecConsumer says how the agent gets its durable EXEC replay
	// consumer agent-<pc_id>: ExecConsumerCreate (the default, upstream's
	// behaviour) creates it and keeps its filters in step with the groups;
	// ExecConsumerBind only binds to the consumer the operator created
	// ('kanade consumer sync'), so that the agent's NATS user needs no
	// right to create consumers on EXEC (docs/cluster.md, gap 2). In bind
	// mode Ready does not wait for a missing consumer.
	ExecConsumer ExecConsumerMode
	// Logger receives the agent's logs. Default: slog.Default().
	Logger *slog.Logger
	// LogFile is the agent log served by logs.fetch.<pc_id>. Default: none
	// (the request is answered with a note saying so).
	LogFile string
	// Version is the agent version reported in heartbeats. Default: Version.
	Version string
	// ObsSources are extra ObsEvent sources run beside the agent.
	ObsSources []ObsSource
	// KeyringFile is a JSON command signing keyring (see package signing). Default: none.
	KeyringFile string
	// Enforcing refuses commands that are not verified against a non-empty keyring.
	Enforcing bool
	// MaxOutput is the number of bytes kept per output stream of a script. Default 4 MiB.
	MaxOutput int
	// KillGrace is the time between SIGTERM and SIGKILL of a script's process group. Default 5 s.
	KillGrace time.Duration
	// DisableInventory turns the inventory reporter off.
	DisableInventory bool
	// InventoryCollector collects the inventory. Default: the platform's
	// (inventory.NewCollector): WMI on Windows, /proc and /sys on Linux.
	InventoryCollector inventory.Collector
	// InventoryCheckInterval is how often the inventory is collected to
	// publish categories that changed between full runs (every
	// inventory_interval). Default inventory.DefaultCheckInterval (15 min).
	InventoryCheckInterval time.Duration
	// InventoryStartSplay bounds the random delay before the first
	// inventory run, so a fleet that boots together does not report at
	// once. Default min(inventory_interval/10, 1 min); negative for none.
	InventoryStartSplay time.Duration
	// Defaults are the built-in configuration under every agent_config scope.
	// Default: wire.DefaultConfig(runtime.NumCPU()).
	Defaults *wire.Config
	// SelfUpdate follows target_version from the config: it downloads the
	// release from agent_releases, verifies and swaps the binary (Exe), and
	// makes Run return ErrRestart (see docs/protocol.md, Self-update). Off by
	// default: a program embedding the agent updates itself its own way.
	// The daemon turns it on and calls the boot sentinel first thing.
	SelfUpdate bool
	// ReleaseKeyringFile is a JSON keyring (same format as the command
	// keyring) whose keys must sign a release. Set, even to a file holding
	// [], every release must be signed by one of its keys ([] refuses them
	// all); so must it when the agent enforces command signatures, with or
	// without this file. Empty and not enforcing: only the SHA-256 digest
	// is checked.
	ReleaseKeyringFile string
	// AllowDowngrade lets the self-update install a release whose version
	// is lower than Version (or cannot be ordered against it) even when the
	// release's signature does not carry the allow-downgrade flag. Off by
	// default: a signed old release is never installed over a newer one.
	AllowDowngrade bool
	// Exe is the binary the self-update replaces. Default: os.Executable().
	Exe string
	// MaxQueued bounds the commands waiting (jitter, limiter) or running at
	// once; more are refused with a skipped result and retried by the EXEC
	// replay. Default 1000.
	MaxQueued int
	// UpdateRestartWait is how long a self-update, once it has swapped the
	// binary, waits for the commands waiting or running to finish before
	// Run returns ErrRestart; what still runs then is killed and reported
	// as at any stop. Commands keep being accepted meanwhile. Default
	// 15 minutes; negative restarts at once.
	UpdateRestartWait time.Duration
	// ShutdownTimeout bounds the final flush of the outboxes at Close. Default 5 s.
	ShutdownTimeout time.Duration
	// CollectRoots, when set, are the only directories a collect job may
	// bundle files from: a listed path must be inside one of them, also
	// once every symbolic link in it is resolved. Default none: any
	// absolute path. Either way the agent's data dir, its credentials and
	// keyring files are never collected (see collect.go).
	CollectRoots []string
	// CollectMaxSize caps the input bytes of one collect bundle, whatever
	// the command's collect.max_size asks. Default 1 GiB.
	CollectMaxSize int64
	// DisableScheduler turns the local scheduler off: `runs_on: agent`
	// schedules (KV schedules, jobs, fleet_config) are then neither
	// followed nor fired. On by default (package scheduler).
	DisableScheduler bool
	// DisableNetworkWatch turns off the agent's own network watcher
	// (package internal/netwatch), which, while the local scheduler runs,
	// fires the network_change trigger when a link goes up or down, an
	// address is added or removed or a default route changes. A host
	// program with its own watcher sets it and calls Agent.Trigger.
	DisableNetworkWatch bool
	// SchedulePollInterval is how often per_pc schedules are polled.
	// Default scheduler.DefaultPollInterval (every minute, as upstream).
	SchedulePollInterval time.Duration
	// Idle, when set, tells the scheduler how long the console has had no
	// user input (known false when that cannot be told), for
	// constraints.require.idle. Default: nil, so an idle requirement is
	// never met.
	Idle func() (idle time.Duration, known bool)
}

func (o *Options) setDefaults() {
	if o.PcID == "" {
		h, _ := os.Hostname()
		o.PcID = subject.SanitizePcID(h)
	}
	if o.Conn == nil {
		if len(o.Servers) == 0 {
			o.Servers = []string{nats.DefaultURL}
		}
		if o.InboxPrefix == "" {
			o.InboxPrefix = DefaultInboxPrefix
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Version == "" {
		o.Version = Version
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = 4 << 20
	}
	if o.KillGrace <= 0 {
		o.KillGrace = 5 * time.Second
	}
	if o.Defaults == nil {
		d := wire.DefaultConfig(runtime.NumCPU())
		o.Defaults = &d
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 1000
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	if o.UpdateRestartWait == 0 {
		o.UpdateRestartWait = 15 * time.Minute
	}
	if o.CollectMaxSize <= 0 {
		o.CollectMaxSize = 1 << 30
	}
}

// Validate reports the first problem with o after defaults are applied.
func (o *Options) Validate() error {
	if o.DataDir == "" {
		return errors.New("agent: Options.DataDir is required")
	}
	if !filepath.IsAbs(o.DataDir) {
		return fmt.Errorf("agent: Options.DataDir %q is not an absolute path", o.DataDir)
	}
	if err := subject.ValidPcID(o.PcID); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if o.Conn != nil {
		switch {
		case len(o.Servers) > 0:
			return errors.New("agent: Options.Servers must be empty with Options.Conn")
		case o.Credentials != (Credentials{}):
			return errors.New("agent: Options.Credentials must be empty with Options.Conn")
		case len(o.NATSOptions) > 0:
			return errors.New("agent: Options.NATSOptions must be empty with Options.Conn")
		case o.InboxPrefix != "":
			return errors.New("agent: Options.InboxPrefix must be empty with Options.Conn (the connection has its own)")
		}
	} else if o.InboxPrefix != "" { // empty: the default
		if err := validInboxPrefix(o.InboxPrefix); err != nil {
			return fmt.Errorf("agent: Options.InboxPrefix %q: %w", o.InboxPrefix, err)
		}
	}
	if !o.ExecConsumer.valid() {
		return fmt.Errorf("agent: Options.ExecConsumer %q: want %q or %q", o.ExecConsumer, ExecConsumerCreate, ExecConsumerBind)
	}
	for _, r := range o.CollectRoots {
		if !filepath.IsAbs(r) {
			return fmt.Errorf("agent: Options.CollectRoots: %q is not an absolute path", r)
		}
	}
	if o.JSDomain != "" {
		if err := subject.ValidToken("jetstream domain", o.JSDomain); err != nil {
			return fmt.Errorf("agent: Options.JSDomain: %w", err)
		}
	}
	c := o.Credentials
	n := 0
	for _, set := range []bool{c.Token != "", c.User != "", c.CredsFile != "", c.NKeySeedFile != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("agent: set at most one of token, user/password, creds file and nkey seed")
	}
	if c.Password != "" && c.User == "" {
		return errors.New("agent: a password needs a user")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("agent: a client certificate needs both CertFile and KeyFile")
	}
	return nil
}

// validInboxPrefix checks an inbox prefix: dot-separated subject tokens,
// none empty, without wildcards or white space.
func validInboxPrefix(p string) error { return subject.ValidPrefix("inbox prefix", p) }
