//go:build !kanade_noembed

package daemon

import (
	"context"
	"log/slog"

	"github.com/kanade/kanade-agent/embedded"
)

// startEmbedded starts the embedded NATS server (the default when no NATS
// URL is configured).
func startEmbedded(ctx context.Context, spec embeddedSpec, log *slog.Logger, level slog.Level) (embeddedServer, error) {
	srv, err := embedded.Start(ctx, embedded.Options{
		StoreDir: spec.store, Listen: spec.listen, Token: spec.token,
		MaxStore: spec.maxStore, Logger: log, LogLevel: level,
	})
	if err != nil {
		return nil, err
	}
	return srv, nil
}
