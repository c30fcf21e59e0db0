//go:build kanade_noembed

package daemon

import (
	"context"
	"errors"
	"log/slog"
)

// startEmbedded fails: this build leaves the embedded NATS server out
// (-tags kanade_noembed), which makes the binary smaller and saves the
// once-a-second wakeup nats-server's process sampler costs in every binary
// that links it. Such an agent needs --nats-url.
func startEmbedded(context.Context, embeddedSpec, *slog.Logger, slog.Level) (embeddedServer, error) {
	return nil, errors.New("this kanade-agent was built without the embedded NATS server (-tags kanade_noembed): set --nats-url")
}
