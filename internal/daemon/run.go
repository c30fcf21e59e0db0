package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/daemon/logrotate"
	"github.com/kanade/kanade-agent/internal/privdir"
	"github.com/kanade/kanade-agent/internal/update"
	"github.com/nats-io/nats.go"
)

// Log file rotation of <data-dir>/logs/agent.log.
const (
	logMaxSize  = 10 << 20
	logMaxFiles = 3
)

// LogPath returns the agent log file under dataDir.
func LogPath(dataDir string) string { return filepath.Join(dataDir, "logs", "agent.log") }

// inProcessURL names the embedded server to the agent's connection, which
// reaches it in process and never dials this URL (embedded.InProcessURL).
const inProcessURL = "nats://in-process"

// embeddedSpec is what startEmbedded starts.
type embeddedSpec struct {
	store, listen, token string
	maxStore             int64
}

// embeddedServer is the running embedded server (*embedded.Server).
type embeddedServer interface {
	ClientURL() string
	ConnectOptions() []nats.Option
	ServeLocal(path string) error
	Close() error
}

// runEmbedded starts the embedded server of cfg with its token (generated
// at the first start), serves the local socket, writes LocalConnFile and
// returns the server and the URL the agent names it by. Failures are
// logged; ok is false then.
func runEmbedded(ctx context.Context, cfg *Config, log *slog.Logger) (srv embeddedServer, url string, ok bool) {
	store := EmbeddedStoreDir(cfg.DataDir)
	connPath := LocalConnPath(cfg.DataDir)
	token, replaced, err := localToken(cfg.DataDir)
	if err != nil {
		log.Error("embedded NATS server: credentials", "file", connPath, "err", err)
		return nil, "", false
	}
	if replaced {
		log.Warn("embedded NATS server: the credentials file was readable or writable by other users (or not a file); a new token replaces it", "file", connPath)
	}
	if host, _, err := net.SplitHostPort(cfg.EmbeddedListen); err == nil && !isLoopbackHost(host) {
		log.Warn("the embedded NATS server listens beyond this machine; its clients send the token in clear text (no TLS)", "listen", cfg.EmbeddedListen)
	}
	srvLevel := slog.LevelWarn
	if cfg.LogLevel <= slog.LevelDebug {
		srvLevel = cfg.LogLevel
	}
	srv, err = startEmbedded(ctx, embeddedSpec{store: store, listen: cfg.EmbeddedListen, token: token, maxStore: cfg.EmbeddedMaxStore}, log, srvLevel)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("embedded NATS server failed to start", "listen", cfg.EmbeddedListen, "store_dir", store, "err", err)
		}
		return nil, "", false
	}
	lc := LocalConn{Token: token, URL: srv.ClientURL()}
	sock := LocalSocketPath(cfg.DataDir)
	if err := srv.ServeLocal(sock); err != nil {
		log.Warn("embedded NATS server: no local socket; the kanade CLI needs --embedded-listen to reach this agent", "err", err)
	} else {
		lc.Socket = sock
	}
	if err := writeLocalConn(cfg.DataDir, lc); err != nil {
		log.Error("embedded NATS server: credentials", "err", err)
		_ = srv.Close()
		return nil, "", false
	}
	listen := lc.URL
	if listen == "" {
		listen = "none"
	}
	log.Warn("no NATS URL configured: running an embedded single-machine NATS server; set --nats-url to connect to a kanade backend",
		"tcp", listen, "local_socket", lc.Socket, "credentials_file", connPath, "store_dir", store)
	return srv, inProcessURL, true
}

// isLoopbackHost reports whether host only accepts connections from this
// machine (embedded.IsLoopback, without linking the server).
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// EmbeddedStoreDir returns the embedded server's JetStream store under dataDir.
func EmbeddedStoreDir(dataDir string) string { return filepath.Join(dataDir, "nats") }

// exitCoder is implemented by an error that asks for a given process exit
// code, such as the agent's restart request after a self-update (64).
//
// HOOK: when the agent gains a restart sentinel (say agent.ErrRestart),
// either give it an ExitCode() int method or add a case in exitCode below.
type exitCoder interface{ ExitCode() int }

// exitCode maps the error of agent.Run to the process exit code.
func exitCode(ctx context.Context, err error) int {
	var ec exitCoder
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ec):
		return ec.ExitCode()
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return ExitOK
	}
	return ExitFailure
}

// newLogger returns a logger writing to console (if not nil) and file, in
// cfg's format at cfg's level.
func newLogger(cfg *Config, console, file io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	handler := func(w io.Writer) slog.Handler {
		if cfg.LogFormat == "json" {
			return slog.NewJSONHandler(w, opts)
		}
		return slog.NewTextHandler(w, opts)
	}
	hs := []slog.Handler{handler(file)}
	if console != nil {
		hs = append(hs, handler(console))
	}
	return slog.New(slog.NewMultiHandler(hs...))
}

// runAgent runs the agent described by cfg until ctx ends, with an embedded
// server when cfg has no NATS URL, and returns the exit code. Logs go to
// console (nil: none) and the rotated log file; errors before the log file
// is open go to stderr.
func runAgent(ctx context.Context, cfg *Config, console, stderr io.Writer) int {
	dataDir, err := ensureDataDir(cfg.DataDir)
	if err != nil {
		return fail(stderr, err)
	}
	logPath := LogPath(cfg.DataDir)
	lw, err := logrotate.Open(logPath, logrotate.Options{MaxSize: logMaxSize, MaxFiles: logMaxFiles})
	if err != nil {
		return fail(stderr, fmt.Errorf("log file: %w", err))
	}
	defer lw.Close()
	log := newLogger(cfg, console, lw)
	prev := slog.Default()
	slog.SetDefault(log)
	defer slog.SetDefault(prev)

	log.Info("kanade-agent starting", "version", Version(), "pc_id", cfg.PcID, "data_dir", cfg.DataDir,
		"os", runtime.GOOS, "arch", runtime.GOARCH, "config_file", cfg.ConfigFile, "log_file", logPath)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if cfg.EnforceErr != nil {
		log.Error("the signature enforcement switch cannot be trusted or read: enforcing signatures", "err", cfg.EnforceErr)
	}
	log.Info("command signatures", "enforcing", cfg.EnforceSignatures, "enforce_from", cfg.EnforceFrom, "keyring_file", cfg.KeyringFile)
	if dataDir == privdir.Reset {
		log.Warn("data directory access was wider than the agent's account: reset", "data_dir", cfg.DataDir)
	}

	// The boot sentinel of the self-update, before anything else runs: a
	// release that keeps failing to start is rolled back on its 4th boot.
	if cfg.SelfUpdate {
		res, err := update.Boot(filepath.Join(cfg.DataDir, "update"), "")
		switch {
		case errors.Is(err, update.ErrRestart):
			log.Warn("self-update: the new release failed to start 4 times; rolled back, restarting", "result", fmt.Sprintf("%+v", res))
			return exitCode(ctx, err)
		case err != nil:
			log.Error("self-update boot check", "err", err, "result", fmt.Sprintf("%+v", res))
		case res.Armed:
			log.Info("self-update: running a new release on trial", "result", fmt.Sprintf("%+v", res))
		}
	}

	servers := cfg.NATSURLs
	var natsOpts []nats.Option
	if cfg.Embedded() {
		srv, url, ok := runEmbedded(ctx, cfg, log)
		if !ok {
			if ctx.Err() != nil {
				log.Info("stopped while the embedded NATS server was starting")
				return ExitOK
			}
			return ExitFailure
		}
		defer func() {
			if err := srv.Close(); err != nil {
				log.Error("embedded NATS server: close", "err", err)
			}
			log.Info("embedded NATS server stopped")
		}()
		servers = []string{url}
		natsOpts = srv.ConnectOptions()
	}

	trig := &triggerHook{}
	sessionSrcs, idle := sessionSources(cfg, log, trig)
	a, err := agent.New(agent.Options{
		PcID:    cfg.PcID,
		DataDir: cfg.DataDir,
		Servers: servers,
		Credentials: agent.Credentials{
			Token:        cfg.Token,
			User:         cfg.User,
			Password:     cfg.Password,
			CredsFile:    cfg.CredsFile,
			NKeySeedFile: cfg.NKeyFile,
			CAFile:       cfg.TLSCA,
			CertFile:     cfg.TLSCert,
			KeyFile:      cfg.TLSKey,
		},
		InboxPrefix:        cfg.InboxPrefix,
		JSDomain:           cfg.JSDomain,
		ExecConsumer:       agent.ExecConsumerMode(cfg.ExecConsumer),
		Logger:             log,
		LogFile:            logPath,
		Version:            Version(),
		KeyringFile:        cfg.KeyringFile,
		Enforcing:          cfg.EnforceSignatures,
		SelfUpdate:         cfg.SelfUpdate,
		AllowDowngrade:     cfg.AllowDowngrade,
		ReleaseKeyringFile: cfg.ReleaseKeyringFile,
		UpdateRestartWait:  restartWait(cfg.UpdateRestartWait),
		NATSOptions:        natsOpts,
		ObsSources:         append(timelineSources(cfg, log), sessionSrcs...),
		Idle:               idle,
	})
	if err != nil {
		log.Error("invalid agent options", "err", err)
		return ExitFailure
	}
	// The service's logon, lock and unlock reach the local scheduler.
	trig.set(a.Trigger)

	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-a.Ready():
			log.Info("agent ready", "servers", redactAll(servers))
		case <-done:
		}
	}()

	start := time.Now()
	err = a.Run(ctx)
	code := exitCode(ctx, err)
	switch {
	case code == ExitOK:
		log.Info("agent stopped", "uptime", time.Since(start).Round(time.Second).String())
	case code == ExitFailure:
		log.Error("agent failed", "err", err)
	default:
		log.Info("agent exiting with a requested code", "exit_code", code, "reason", err)
	}
	return code
}

// restartWait maps the daemon's update-restart-wait (0: at once) to
// agent.Options.UpdateRestartWait (negative: at once).
func restartWait(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
