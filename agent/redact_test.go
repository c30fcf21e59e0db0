package agent_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// TestURLCredentialsNotLogged: a password or token written into a server
// URL never reaches the agent log (which logs.fetch serves).
func TestURLCredentialsNotLogged(t *testing.T) {
	for _, tc := range []struct {
		name, userinfo, secret string
		configure              func(*server.Options) []nats.Option
	}{
		{"token as user name", "tok3n-SECRET@", "tok3n-SECRET", func(o *server.Options) []nats.Option {
			o.Authorization = "tok3n-SECRET"
			return []nats.Option{nats.Token("tok3n-SECRET")}
		}},
		{"user and password", "u:pa55-SECRET@", "pa55-SECRET", func(o *server.Options) []nats.Option {
			o.Username, o.Password = "u", "pa55-SECRET"
			return []nats.Option{nats.UserInfo("u", "pa55-SECRET")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := authServer(t, tc.configure)
			url = strings.Replace(url, "nats://", "nats://"+tc.userinfo, 1)
			var logs natstest.Buffer
			r := runAgent(t, "redact-pc", url, agent.Credentials{}, func(o *agent.Options) {
				o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			waitReady(t, r, 30*time.Second)
			if !strings.Contains(logs.String(), "nats connected") {
				t.Fatalf("no connect line in the log:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), tc.secret) {
				t.Fatalf("the log holds the secret %q:\n%s", tc.secret, logs.String())
			}
		})
	}
}
