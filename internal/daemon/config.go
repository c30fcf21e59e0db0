package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/bytesize"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
)

// Config is the daemon's configuration once flags, environment, the config
// file and defaults are merged (in that order of precedence).
type Config struct {
	// ConfigFile is the TOML file that was read, if any.
	ConfigFile string
	// PcID identifies the agent; default the host name, sanitized.
	PcID string
	// DataDir is the agent's absolute data directory.
	DataDir string
	// NATSURLs are the servers to connect to; empty runs an embedded server.
	NATSURLs []string
	// Token, User, Password, CredsFile and NKeyFile authenticate to NATS.
	// Token is also read from TokenFile or, on Windows, from the registry
	// (RegistryTokenPath).
	Token, User, Password, CredsFile, NKeyFile string
	// TokenFile is the file the token was read from, if any.
	TokenFile string
	// TLSCA, TLSCert and TLSKey are PEM files for TLS to NATS.
	TLSCA, TLSCert, TLSKey string
	// InboxPrefix is the prefix of the agent's reply subjects
	// (agent.Options.InboxPrefix); empty is nats.go's _INBOX.
	InboxPrefix string
	// JSDomain is the JetStream domain holding the protocol's streams
	// (agent.Options.JSDomain), for agents behind a leaf node.
	JSDomain string
	// ExecConsumer is "create" (the default) or "bind": how the agent gets
	// its EXEC replay consumer (agent.Options.ExecConsumer).
	ExecConsumer string
	// KeyringFile is the command signing keyring; default, off Windows,
	// signing.DefaultKeysFile (on Windows the agent reads the registry
	// value signing.RegistryKeysValue first).
	KeyringFile string
	// EnforceSignatures refuses commands that fail the signature check. It
	// is on when set, or when the machine's enforcement switch requests it
	// (signing.DefaultEnforceFile, or on Windows the registry value
	// signing.RegistryEnforceValue); the setting cannot turn the switch off.
	EnforceSignatures bool
	// EnforceFrom says what turned enforcement on: "setting", the switch's
	// source, or "" when off.
	EnforceFrom string
	// Warnings are what the checks of the files found wrong without
	// refusing them (checkSecret); the daemon logs them at start.
	Warnings []string
	// EnforceErr is why the switch could not be trusted or read, which
	// turns enforcement on (signing.Sources.EnforceRequested).
	EnforceErr error
	// SelfUpdate follows target_version from the agent config.
	SelfUpdate bool
	// AllowDowngrade lets the self-update install a release older than the
	// running one even when its signature does not allow it.
	AllowDowngrade bool
	// ReleaseKeyringFile holds the keys that must sign a release.
	ReleaseKeyringFile string
	// UpdateRestartWait bounds how long a self-update waits for running
	// commands before it restarts the agent; 0 restarts at once.
	UpdateRestartWait time.Duration
	// LogLevel is the lowest level logged.
	LogLevel slog.Level
	// LogFormat is "text" or "json".
	LogFormat string
	// EmbeddedListen is the host:port of the embedded server's TCP
	// listener; empty (the default) opens no TCP port.
	EmbeddedListen string
	// EmbeddedMaxStore is the most bytes the embedded JetStream may store;
	// 0 is the server's default (75 % of the free space).
	EmbeddedMaxStore int64
	// Timeline runs the PC timeline source (package timeline) in the agent.
	Timeline bool
	// UserPresence runs the in-session idle helper and records active/idle
	// ObsEvents (package session).
	UserPresence bool
	// SessionEvents records the Windows service's session changes (logon,
	// logoff, lock, unlock) as ObsEvents of source agent:session_change.
	SessionEvents bool

	// sessions relays the service's session changes to the running agent.
	sessions *sessionRelay
}

// Embedded reports whether the daemon runs its own NATS server.
func (c *Config) Embedded() bool { return len(c.NATSURLs) == 0 }

// settingKind says how a raw value is parsed.
type settingKind int

const (
	kindString settingKind = iota
	kindPath               // a file or directory, made absolute
	kindList               // comma-separated; an array in TOML
	kindBool
	kindLevel
	kindSecret // a string that is never echoed
	kindSize   // a byte count: 1073741824, 512MiB, 2GiB
)

// setting is one configuration value with its flag, environment variable
// and TOML key (the flag name with '-' replaced by '_').
type setting struct {
	flag  string
	env   string
	kind  settingKind
	def   string // raw default; "" when computed later or none
	usage string
	field func(c *Config) any
	check func(string) error
}

func (s *setting) key() string { return strings.ReplaceAll(s.flag, "-", "_") }

const (
	configFlag = "config"
	configEnv  = "KANADE_AGENT_CONFIG"
)

// settings lists every setting, in the order of the usage text.
var settings = []*setting{
	{flag: "pc-id", env: "KANADE_PC_ID", usage: "agent id used in subjects and KV keys, kept exactly as given (case-sensitive, as upstream kanade); it may hold ASCII letters, digits, '-', '_' and '=', at most 128 bytes, and anything else is refused (default: the host name, lower-cased, every other character replaced by '-' and a non-ASCII letter or digit by u<hex code point>: \"Kanade.PC01\" becomes \"kanade-pc01\")",
		field: func(c *Config) any { return &c.PcID }, check: subject.ValidPcID},
	{flag: "data-dir", env: "KANADE_DATA_DIR", kind: kindPath, usage: `data directory (default: %ProgramData%\Kanade on Windows, /var/lib/kanade as root, else $XDG_STATE_HOME/kanade or ~/.local/state/kanade)`,
		field: func(c *Config) any { return &c.DataDir }},
	{flag: "nats-url", env: "KANADE_NATS_URL", kind: kindList, usage: "comma-separated NATS server URLs (default: none, run an embedded single-machine server)",
		field: func(c *Config) any { return &c.NATSURLs }},
	{flag: "nats-token", env: "KANADE_NATS_TOKEN", kind: kindSecret, usage: "NATS auth token; prefer --nats-token-file (a command line is visible to every user). On Windows the registry value " + RegistryTokenPath + " wins over this variable and config key, not over the flags",
		field: func(c *Config) any { return &c.Token }},
	{flag: "nats-token-file", env: "KANADE_NATS_TOKEN_FILE", kind: kindPath, usage: "file holding the NATS auth token (surrounding white space ignored); refused if other users can change it, or (Unix) read it",
		field: func(c *Config) any { return &c.TokenFile }},
	{flag: "nats-user", env: "KANADE_NATS_USER", usage: "NATS user name",
		field: func(c *Config) any { return &c.User }},
	{flag: "nats-password", env: "KANADE_NATS_PASSWORD", kind: kindSecret, usage: "NATS password (with --nats-user)",
		field: func(c *Config) any { return &c.Password }},
	{flag: "nats-creds", env: "KANADE_NATS_CREDS", kind: kindPath, usage: "NATS .creds file (JWT and nkey seed)",
		field: func(c *Config) any { return &c.CredsFile }},
	{flag: "nats-nkey", env: "KANADE_NATS_NKEY", kind: kindPath, usage: "file holding an nkey seed",
		field: func(c *Config) any { return &c.NKeyFile }},
	{flag: "tls-ca", env: "KANADE_TLS_CA", kind: kindPath, usage: "PEM file of CAs trusted for the NATS server certificate",
		field: func(c *Config) any { return &c.TLSCA }},
	{flag: "tls-cert", env: "KANADE_TLS_CERT", kind: kindPath, usage: "PEM client certificate (with --tls-key)",
		field: func(c *Config) any { return &c.TLSCert }},
	{flag: "tls-key", env: "KANADE_TLS_KEY", kind: kindPath, usage: "PEM client key (with --tls-cert)",
		field: func(c *Config) any { return &c.TLSKey }},
	{flag: "nats-inbox-prefix", env: "KANADE_NATS_INBOX_PREFIX", usage: "prefix of the agent's reply subjects, such as _INBOX.<pc_id> when its NATS user may only subscribe to its own replies (default: _INBOX; see docs/cluster.md)",
		field: func(c *Config) any { return &c.InboxPrefix }, check: checkInboxPrefix},
	{flag: "nats-js-domain", env: "KANADE_NATS_JS_DOMAIN", usage: "JetStream domain of the servers holding the protocol's streams, for agents behind a leaf node whose hub has its own domain (default: none)",
		field: func(c *Config) any { return &c.JSDomain }, check: checkJSDomain},
	{flag: "exec-consumer", env: "KANADE_EXEC_CONSUMER", def: "create", usage: "create: the agent creates its EXEC replay consumer agent-<pc_id> and keeps its filters in step with its groups (upstream's way); bind: it only binds to the consumer the operator created with 'kanade consumer sync', so its NATS user needs no right to create consumers (see docs/cluster.md)",
		field: func(c *Config) any { return &c.ExecConsumer }, check: checkExecConsumer},
	{flag: "keyring", env: "KANADE_KEYRING", kind: kindPath, usage: "JSON command signing keyring (default: " + signing.DefaultKeysFile + " off Windows, read when it exists; on Windows the registry value " + signing.RegistryKey + `\` + signing.RegistryKeysValue + " comes first, as upstream); reloaded when a signature names an unknown key",
		field: func(c *Config) any { return &c.KeyringFile }},
	{flag: "enforce-signatures", env: "KANADE_ENFORCE_SIGNATURES", kind: kindBool, def: "false", usage: "refuse commands not signed by a key of the keyring. Also on, whatever this setting says, when " + signing.DefaultEnforceFile + " (on Windows the registry value " + signing.RegistryKey + `\` + signing.RegistryEnforceValue + ") holds 1, true or yes, or exists but cannot be trusted or read, as upstream",
		field: func(c *Config) any { return &c.EnforceSignatures }},
	{flag: "self-update", env: "KANADE_SELF_UPDATE", kind: kindBool, def: "true", usage: "install the release named by target_version from agent_releases, and roll back one that cannot boot",
		field: func(c *Config) any { return &c.SelfUpdate }},
	{flag: "release-keyring", env: "KANADE_RELEASE_KEYRING", kind: kindPath, usage: "JSON keyring whose keys must sign a release (default: check the SHA-256 digest only)",
		field: func(c *Config) any { return &c.ReleaseKeyringFile }},
	{flag: "allow-downgrade", env: "KANADE_ALLOW_DOWNGRADE", kind: kindBool, def: "false", usage: "let the self-update install a target_version older than the running version even when the release's signed flags do not say allow-downgrade",
		field: func(c *Config) any { return &c.AllowDowngrade }},
	{flag: "update-restart-wait", env: "KANADE_UPDATE_RESTART_WAIT", def: "15m", usage: "how long a self-update waits for running commands to finish before it restarts the agent (0: at once)",
		field: func(c *Config) any { return &c.UpdateRestartWait }},
	{flag: "log-level", env: "KANADE_LOG_LEVEL", kind: kindLevel, def: "info", usage: "debug, info, warn or error",
		field: func(c *Config) any { return &c.LogLevel }},
	{flag: "log-format", env: "KANADE_LOG_FORMAT", def: "text", usage: "text or json, for the console and the log file",
		field: func(c *Config) any { return &c.LogFormat }, check: checkLogFormat},
	{flag: "embedded-listen", env: "KANADE_EMBEDDED_LISTEN", usage: "also open a TCP port host:port for the embedded server, used without --nats-url (port 0: random); clients must present the token of <data-dir>/" + LocalConnFile + " (default: no TCP port; the agent connects in process, the kanade CLI through the socket <data-dir>/" + LocalSocketName + ")",
		field: func(c *Config) any { return &c.EmbeddedListen }, check: checkListen},
	{flag: "embedded-max-store", env: "KANADE_EMBEDDED_MAX_STORE", kind: kindSize, def: "0", usage: "most disk the embedded JetStream may use, such as 2GiB (0: 75% of the free space); stream limits shrink to fit",
		field: func(c *Config) any { return &c.EmbeddedMaxStore }},
	{flag: "timeline", env: "KANADE_TIMELINE", kind: kindBool, def: "true", usage: timelineUsage,
		field: func(c *Config) any { return &c.Timeline }},
	{flag: "user-presence", env: "KANADE_USER_PRESENCE", kind: kindBool, def: "true", usage: "record when the console user is active or idle (5 min without input), read by a helper the agent runs in the user's session (" + progName + " --session-agent)",
		field: func(c *Config) any { return &c.UserPresence }},
	{flag: "session-events", env: "KANADE_SESSION_EVENTS", kind: kindBool, def: "false", usage: "also record the Windows service's session changes (logon, logoff, lock, unlock) as events of source agent:session_change; upstream records them from the event log only",
		field: func(c *Config) any { return &c.SessionEvents }},
}

// UsageError is a problem with the command line, environment or config
// file. Main exits with code 2 for it.
type UsageError struct{ Err error }

// Error returns the message of e.Err.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns e.Err.
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// rawValue is one setting's value as text, and where it came from.
type rawValue struct {
	v   string
	src string
}

// flagValue records a flag's raw text; it implements flag.Value.
type flagValue struct {
	s   *setting
	v   *string
	set bool
}

func (f *flagValue) String() string {
	if f == nil || f.v == nil {
		return ""
	}
	return *f.v
}

func (f *flagValue) Set(v string) error {
	*f.v, f.set = v, true
	return nil
}

func (f *flagValue) IsBoolFlag() bool { return f.s != nil && f.s.kind == kindBool }

// flags holds a parsed command line.
type flags struct {
	fs     *flag.FlagSet
	config flagValue
	values map[string]*flagValue
}

// newFlags returns the daemon's flag set. Parsing errors are returned, not printed.
func newFlags(name string) *flags {
	f := &flags{fs: flag.NewFlagSet(name, flag.ContinueOnError), values: map[string]*flagValue{}}
	f.fs.SetOutput(io.Discard)
	f.fs.Usage = func() {}
	f.config.v = new(string)
	f.fs.Var(&f.config, configFlag, "TOML config file")
	for _, s := range settings {
		fv := &flagValue{s: s, v: new(string)}
		f.values[s.flag] = fv
		f.fs.Var(fv, s.flag, s.usage)
	}
	return f
}

// loadConfig merges defaults, the config file, the environment and the
// parsed flags f into a Config. Every error is a *UsageError.
func loadConfig(f *flags, sy *system) (*Config, error) {
	raw := map[string]rawValue{}
	for _, s := range settings {
		if s.def != "" {
			raw[s.flag] = rawValue{s.def, "default"}
		}
	}

	cfg := &Config{}
	path, pathSrc := "", ""
	if v := sy.getenv(configEnv); v != "" {
		path, pathSrc = v, configEnv
	}
	if f.config.set {
		path, pathSrc = *f.config.v, "--"+configFlag
	}
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, usageErrorf("%s: %w", pathSrc, err)
		}
		cfg.ConfigFile = abs
		if err := checkTrusted(abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, usageErrorf("config file %s refused: %w (it must be changeable only by root/SYSTEM/Administrators or the agent's user)", abs, err)
		}
		if err := loadFile(abs, raw); err != nil {
			return nil, err
		}
		// A config file that holds a secret is a secret file.
		for _, k := range []string{"nats-token", "nats-password"} {
			if _, ok := raw[k]; !ok {
				continue
			}
			if err := checkSecret(cfg, "config file (holding "+strings.ReplaceAll(k, "-", "_")+")", abs); err != nil {
				return nil, usageErrorf("config file %s refused: it holds %s: %w (make it readable only by root/SYSTEM/Administrators or the agent's user, or use --nats-token-file)",
					abs, strings.ReplaceAll(k, "-", "_"), err)
			}
			break
		}
	}
	for _, s := range settings {
		if v := sy.getenv(s.env); v != "" {
			raw[s.flag] = rawValue{v, "environment variable " + s.env}
		}
	}
	for _, s := range settings {
		if fv := f.values[s.flag]; fv.set {
			raw[s.flag] = rawValue{*fv.v, "flag --" + s.flag}
		}
	}

	if err := applyRegistryToken(raw); err != nil {
		return nil, err
	}
	for _, s := range settings {
		r, ok := raw[s.flag]
		if !ok {
			continue
		}
		if err := assign(cfg, s, r); err != nil {
			return nil, err
		}
	}
	if err := finish(cfg, sy); err != nil {
		return nil, err
	}
	return cfg, nil
}

// assign parses r into s's field of cfg.
func assign(cfg *Config, s *setting, r rawValue) error {
	bad := func(format string, args ...any) error {
		return usageErrorf("invalid %s (from %s): %s", s.flag, r.src, fmt.Sprintf(format, args...))
	}
	if s.check != nil && r.v != "" {
		if err := s.check(r.v); err != nil {
			if s.kind == kindSecret {
				return bad("%v", err)
			}
			return bad("%q: %v", r.v, err)
		}
	}
	switch p := s.field(cfg).(type) {
	case *string:
		v := r.v
		if s.kind == kindPath && v != "" {
			abs, err := filepath.Abs(v)
			if err != nil {
				return bad("%q: %v", v, err)
			}
			v = abs
		}
		*p = v
	case *bool:
		b, err := strconv.ParseBool(r.v)
		if err != nil {
			return bad("%q: want true or false", r.v)
		}
		*p = b
	case *[]string:
		*p = nil
		if strings.TrimSpace(r.v) == "" {
			return nil
		}
		for u := range strings.SplitSeq(r.v, ",") {
			u = strings.TrimSpace(u)
			if u == "" {
				return bad("%q: empty URL in the list", redactURLs(r.v))
			}
			*p = append(*p, u)
		}
	case *int64:
		n, err := bytesize.Parse(r.v)
		if err != nil {
			return bad("%q: %v", r.v, err)
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(r.v)
		if err != nil || d < 0 {
			return bad("%q: want a duration such as 90s or 15m", r.v)
		}
		*p = d
	case *slog.Level:
		l, err := parseLevel(r.v)
		if err != nil {
			return bad("%q: %v", r.v, err)
		}
		*p = l
	default:
		panic(fmt.Sprintf("daemon: setting %s has field type %T", s.flag, p))
	}
	return nil
}

func parseLevel(v string) (slog.Level, error) {
	switch strings.ToLower(v) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("want debug, info, warn or error")
}

func checkLogFormat(v string) error {
	if v != "text" && v != "json" {
		return errors.New("want text or json")
	}
	return nil
}

func checkInboxPrefix(v string) error {
	if v == "" {
		return nil
	}
	return subject.ValidPrefix("inbox prefix", v)
}

func checkJSDomain(v string) error {
	if v == "" {
		return nil
	}
	return subject.ValidToken("jetstream domain", v)
}

func checkExecConsumer(v string) error {
	if v != string(agent.ExecConsumerCreate) && v != string(agent.ExecConsumerBind) {
		return fmt.Errorf("want %s or %s", agent.ExecConsumerCreate, agent.ExecConsumerBind)
	}
	return nil
}

func checkListen(v string) error {
	if v == "" {
		return nil
	}
	_, p, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("want host:port")
	}
	if n, err := strconv.Atoi(p); err != nil || n < -1 || n > 65535 {
		return errors.New("port is not a number from 0 to 65535")
	}
	return nil
}

// loadFile reads the TOML file at path into raw. Relative paths in it are
// taken relative to the file's directory.
func loadFile(path string, raw map[string]rawValue) error {
	var prims map[string]toml.Primitive
	md, err := toml.DecodeFile(path, &prims)
	if err != nil {
		return usageErrorf("config file %s: %w", path, err)
	}
	for _, s := range settings {
		prim, ok := prims[s.key()]
		if !ok {
			continue
		}
		src := fmt.Sprintf("config file %s key %s", path, s.key())
		var v any
		if err := md.PrimitiveDecode(prim, &v); err != nil {
			return usageErrorf("%s: %w", src, err)
		}
		text, err := fileValue(s, v, filepath.Dir(path))
		if err != nil {
			return usageErrorf("%s: %w", src, err)
		}
		raw[s.flag] = rawValue{text, src}
	}
	// A key decoded as a Primitive counts as decoded, so the top-level keys
	// are checked against the settings here; Undecoded catches the rest.
	known := map[string]bool{}
	names := make([]string, 0, len(settings))
	for _, s := range settings {
		known[s.key()] = true
		names = append(names, s.key())
	}
	var unknown []string
	seen := map[string]bool{}
	for _, k := range append(md.Keys(), md.Undecoded()...) {
		name := k.String()
		if known[k[0]] && len(k) == 1 {
			continue
		}
		if !known[k[0]] {
			name = k[0]
		}
		if !seen[name] {
			seen[name] = true
			unknown = append(unknown, strconv.Quote(name))
		}
	}
	if len(unknown) > 0 {
		return usageErrorf("config file %s: unknown key %s (known keys: %s)", path, strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	return nil
}

// fileValue turns a decoded TOML value into the raw text of s.
func fileValue(s *setting, v any, dir string) (string, error) {
	switch s.kind {
	case kindBool:
		b, ok := v.(bool)
		if !ok {
			return "", fmt.Errorf("want true or false, got %s", tomlType(v))
		}
		return strconv.FormatBool(b), nil
	case kindSize:
		switch n := v.(type) {
		case int64:
			return strconv.FormatInt(n, 10), nil
		case string:
			return n, nil
		}
		return "", fmt.Errorf("want a byte count or a string such as \"2GiB\", got %s", tomlType(v))
	case kindList:
		switch l := v.(type) {
		case string:
			return l, nil
		case []any:
			parts := make([]string, len(l))
			for i, e := range l {
				str, ok := e.(string)
				if !ok || strings.Contains(str, ",") {
					return "", fmt.Errorf("element %d: want a URL string, got %s", i, tomlType(e))
				}
				parts[i] = str
			}
			return strings.Join(parts, ","), nil
		}
		return "", fmt.Errorf("want a string or an array of strings, got %s", tomlType(v))
	}
	str, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %s", tomlType(v))
	}
	if s.kind == kindPath && str != "" && !filepath.IsAbs(str) {
		str = filepath.Join(dir, str)
	}
	return str, nil
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// finish applies computed defaults and checks settings against each other.
func finish(cfg *Config, sy *system) error {
	if cfg.PcID == "" {
		h, err := sy.hostname()
		if err != nil {
			return usageErrorf("no --pc-id and no host name: %w", err)
		}
		cfg.PcID = subject.SanitizePcID(h)
	}
	if cfg.DataDir == "" {
		d, err := defaultDataDir(sy)
		if err != nil {
			return &UsageError{Err: err}
		}
		cfg.DataDir = d
	}
	if cfg.TokenFile != "" {
		if cfg.Token != "" {
			return usageErrorf("conflicting NATS credentials --nats-token, --nats-token-file: set only one")
		}
		tok, err := readTokenFile(cfg, cfg.TokenFile)
		if err != nil {
			return &UsageError{Err: err}
		}
		cfg.Token = tok
	}
	applySigningDefaults(cfg, signingSources(sy.goos))
	var creds []string
	for _, c := range []struct{ flag, v string }{
		{"--nats-token", cfg.Token}, {"--nats-user", cfg.User},
		{"--nats-creds", cfg.CredsFile}, {"--nats-nkey", cfg.NKeyFile},
	} {
		if c.v != "" {
			creds = append(creds, c.flag)
		}
	}
	if len(creds) > 1 {
		return usageErrorf("conflicting NATS credentials %s: set only one", strings.Join(creds, ", "))
	}
	if cfg.Password != "" && cfg.User == "" {
		return usageErrorf("--nats-password needs --nats-user")
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return usageErrorf("--tls-cert and --tls-key go together")
	}
	if cfg.Embedded() {
		var set []string
		for _, s := range []struct{ flag, v string }{
			{"--nats-token", cfg.Token}, {"--nats-token-file", cfg.TokenFile}, {"--nats-user", cfg.User}, {"--nats-creds", cfg.CredsFile},
			{"--nats-nkey", cfg.NKeyFile}, {"--tls-ca", cfg.TLSCA}, {"--tls-cert", cfg.TLSCert},
		} {
			if s.v != "" {
				set = append(set, s.flag)
			}
		}
		if len(set) > 0 {
			return usageErrorf("%s set but no --nats-url: without a URL the agent runs an embedded server, whose token it generates itself (%s in the data directory) and which has no TLS", strings.Join(set, ", "), LocalConnFile)
		}
	}
	// Files that decide which server the agent trusts, or who it is to that
	// server: others must not change them, nor read the secret ones.
	for _, f := range []struct {
		flag, path string
		secret     bool
	}{
		{"--nats-creds", cfg.CredsFile, true}, {"--nats-nkey", cfg.NKeyFile, true}, {"--tls-key", cfg.TLSKey, true},
		{"--tls-ca", cfg.TLSCA, false}, {"--tls-cert", cfg.TLSCert, false},
	} {
		if f.path == "" {
			continue
		}
		check, must := checkTrusted, "changeable only by root/SYSTEM/Administrators or the agent's user"
		if f.secret {
			check = func(p string) error { return checkSecret(cfg, f.flag, p) }
			must = "readable and changeable only by root/SYSTEM/Administrators or the agent's user"
		}
		if err := check(f.path); errors.Is(err, fs.ErrNotExist) {
			return usageErrorf("%s %s: no such file", f.flag, f.path)
		} else if err != nil {
			return usageErrorf("%s %s refused: %w (it must be %s)", f.flag, f.path, err, must)
		}
	}
	return nil
}

// signingSources returns where upstream kanade keeps the command keyring
// and the enforcement switch on goos. Tests replace it.
var signingSources = func(goos string) signing.Sources {
	if goos == "windows" {
		return signing.Sources{Registry: signing.RegistryKey}
	}
	return signing.DefaultSourcesAt("/")
}

// applySigningDefaults fills in the keyring file and the enforcement
// switch from src when the configuration leaves them open.
func applySigningDefaults(cfg *Config, src signing.Sources) {
	if cfg.KeyringFile == "" {
		cfg.KeyringFile = src.KeysFile
	}
	if cfg.EnforceSignatures {
		cfg.EnforceFrom = "setting"
	}
	on, err := src.EnforceRequested()
	cfg.EnforceErr = err
	if on && !cfg.EnforceSignatures {
		cfg.EnforceSignatures = true
		cfg.EnforceFrom = enforceSourceName(src)
	}
}

func enforceSourceName(src signing.Sources) string {
	if src.Registry != "" && src.EnforceFile == "" {
		return "registry " + src.Registry + `\` + signing.RegistryEnforceValue
	}
	if src.Registry != "" {
		return "registry " + src.Registry + `\` + signing.RegistryEnforceValue + " or file " + src.EnforceFile
	}
	return "file " + src.EnforceFile
}

// serviceArgs returns the flags of f as a command line for a service, with
// path values made absolute (a service does not start in the current
// directory). Only flags that were set are included, in a fixed order. A
// secret flag (--nats-token, --nats-password) is refused with a
// *UsageError: a service's command line is readable by every user.
func (f *flags) serviceArgs() ([]string, error) {
	if secrets := f.secretFlags(); len(secrets) > 0 {
		return nil, usageErrorf("%s would be stored in the service's command line, which every user can read: use --nats-token-file FILE (a file only SYSTEM and Administrators can read), the registry value %s, or a config file (--config) readable only by them",
			strings.Join(secrets, ", "), RegistryTokenPath)
	}
	var out []string
	if f.config.set {
		abs, err := filepath.Abs(*f.config.v)
		if err != nil {
			return nil, err
		}
		out = append(out, "--"+configFlag+"="+abs)
	}
	for _, s := range settings {
		fv := f.values[s.flag]
		if !fv.set {
			continue
		}
		v := *fv.v
		if s.kind == kindPath && v != "" {
			abs, err := filepath.Abs(v)
			if err != nil {
				return nil, err
			}
			v = abs
		}
		out = append(out, "--"+s.flag+"="+v)
	}
	return out, nil
}

// secretFlags reports which set flags hold secrets.
func (f *flags) secretFlags() []string {
	var out []string
	for _, s := range settings {
		if s.kind == kindSecret && f.values[s.flag].set {
			out = append(out, "--"+s.flag)
		}
	}
	return out
}
