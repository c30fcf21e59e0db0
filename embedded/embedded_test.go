package embedded_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/embedded"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// noListen as Options.Listen makes start leave Listen empty (the default:
// no TCP listener); any other empty Listen becomes 127.0.0.1:-1.
const noListen = "none"

func start(t *testing.T, opts embedded.Options) *embedded.Server {
	t.Helper()
	if opts.StoreDir == "" {
		opts.StoreDir = natstest.TempDir(t)
	}
	switch opts.Listen {
	case "":
		opts.Listen = "127.0.0.1:-1"
	case noListen:
		opts.Listen = ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func connect(t *testing.T, url string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func checkProvisioned(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cfg := range provision.Streams() {
		if _, err := js.Stream(ctx, cfg.Name); err != nil {
			t.Errorf("stream %s: %v", cfg.Name, err)
		}
	}
	for _, cfg := range provision.Buckets() {
		if _, err := js.KeyValue(ctx, cfg.Bucket); err != nil {
			t.Errorf("bucket %s: %v", cfg.Bucket, err)
		}
	}
	for _, cfg := range provision.ObjectStores() {
		if _, err := js.ObjectStore(ctx, cfg.Bucket); err != nil {
			t.Errorf("object store %s: %v", cfg.Bucket, err)
		}
	}
}

func TestStartProvisions(t *testing.T) {
	srv := start(t, embedded.Options{})
	if !strings.HasPrefix(srv.ClientURL(), "nats://127.0.0.1:") || strings.HasSuffix(srv.ClientURL(), ":-1") {
		t.Fatalf("ClientURL = %q", srv.ClientURL())
	}
	checkProvisioned(t, connect(t, srv.ClientURL()))
}

func TestStartPortZeroIsRandom(t *testing.T) {
	srv := start(t, embedded.Options{Listen: "127.0.0.1:0"})
	if strings.HasSuffix(srv.ClientURL(), ":0") || strings.HasSuffix(srv.ClientURL(), ":4222") {
		t.Fatalf("ClientURL = %q, want a random port", srv.ClientURL())
	}
}

func TestStartUnspecifiedHostGivesLoopbackURL(t *testing.T) {
	srv := start(t, embedded.Options{Listen: "0.0.0.0:-1", Token: "t0ken"})
	if !strings.HasPrefix(srv.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q", srv.ClientURL())
	}
	connect(t, srv.ClientURL(), nats.Token("t0ken"))
}

func TestSkipProvision(t *testing.T) {
	srv := start(t, embedded.Options{SkipProvision: true})
	js := connect(t, srv.ClientURL())
	_, err := js.Stream(context.Background(), "RESULTS")
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("Stream(RESULTS) = %v, want ErrStreamNotFound", err)
	}
}

func TestRestartKeepsData(t *testing.T) {
	dir := natstest.TempDir(t)
	srv := start(t, embedded.Options{StoreDir: dir})
	js := connect(t, srv.ClientURL())
	ctx := context.Background()
	if _, err := js.Publish(ctx, "results.r1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv = start(t, embedded.Options{StoreDir: dir})
	js = connect(t, srv.ClientURL())
	st, err := js.Stream(ctx, "RESULTS")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("RESULTS holds %d messages after restart, want 1", n)
	}
}

func TestCloseTwice(t *testing.T) {
	srv := start(t, embedded.Options{})
	if err := srv.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	err := srv.Close()
	if !errors.Is(err, net.ErrClosed) || !errors.Is(err, embedded.ErrClosed) {
		t.Fatalf("second Close = %v, want net.ErrClosed", err)
	}
	if _, err := nats.Connect(srv.ClientURL(), nats.Timeout(time.Second)); err == nil {
		t.Fatal("connected to a closed server")
	}
}

func TestStartPortInUseFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var logs natstest.Buffer
	begin := time.Now()
	_, err = embedded.Start(context.Background(), embedded.Options{
		StoreDir: natstest.TempDir(t),
		Listen:   l.Addr().String(),
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err == nil {
		t.Fatal("Start on a busy port succeeded")
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("Start took %s to fail", d)
	}
	if !strings.Contains(err.Error(), "listen") {
		t.Errorf("error %q does not mention listening", err)
	}
	if !strings.Contains(logs.String(), "fatal=true") {
		t.Errorf("fatal not logged: %s", logs.String())
	}
}

func TestStartContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := embedded.Start(ctx, embedded.Options{StoreDir: natstest.TempDir(t), Listen: "127.0.0.1:-1"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a canceled ctx = %v, want context.Canceled", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts embedded.Options
		want string
	}{
		{"no store dir", embedded.Options{}, "StoreDir is required"},
		{"no port", embedded.Options{StoreDir: "x", Listen: "127.0.0.1"}, "want host:port"},
		{"bad port", embedded.Options{StoreDir: "x", Listen: "127.0.0.1:http"}, "not a number"},
		{"port too big", embedded.Options{StoreDir: "x", Listen: "127.0.0.1:70000"}, "not a number"},
		{"negative max store", embedded.Options{StoreDir: "x", MaxStore: -1}, "negative"},
		{"every interface without a token", embedded.Options{StoreDir: "x", Listen: "0.0.0.0:4222"}, "without authentication"},
		{"empty host without a token", embedded.Options{StoreDir: "x", Listen: ":0"}, "without authentication"},
		{"LAN address without a token", embedded.Options{StoreDir: "x", Listen: "192.168.1.5:4222"}, "without authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := embedded.Start(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestValidateAcceptsDefaults(t *testing.T) {
	o := embedded.Options{StoreDir: "x"}
	if err := o.Validate(); err != nil {
		t.Fatalf("Validate with an empty Listen: %v", err)
	}
}

func TestLogLevel(t *testing.T) {
	t.Run("default warn", func(t *testing.T) {
		var logs natstest.Buffer
		start(t, embedded.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if s := logs.String(); strings.Contains(s, "level=INFO") || strings.Contains(s, "level=DEBUG") {
			t.Fatalf("info or debug lines with the default level:\n%s", s)
		}
	})
	t.Run("info", func(t *testing.T) {
		var logs natstest.Buffer
		start(t, embedded.Options{
			Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
			LogLevel: slog.LevelInfo,
		})
		s := logs.String()
		if !strings.Contains(s, "Starting nats-server") || !strings.Contains(s, "component=nats-server") {
			t.Fatalf("server notices missing at level info:\n%s", s)
		}
	})
}

// TestSmallStoreScalesStreams: with a store limit far below the streams'
// 3.9 GiB (a small disk), Start scales the stream limits down instead of
// failing, and everything is provisioned.
func TestSmallStoreScalesStreams(t *testing.T) {
	srv := start(t, embedded.Options{MaxStore: 256 << 20})
	js := connect(t, srv.ClientURL())
	checkProvisioned(t, js)
	s, err := js.Stream(context.Background(), "RESULTS")
	if err != nil {
		t.Fatal(err)
	}
	if mb := s.CachedInfo().Config.MaxBytes; mb <= 0 || mb > 128<<20 {
		t.Fatalf("RESULTS MaxBytes %d, want scaled under half of the 256 MiB store", mb)
	}
}
