//go:build !kanade_noembed

package daemon

import (
	"context"
	"log/slog"

	"github.com/kanade/kanade-agent/embedded"
)

// startEmbedded starts the embedded NATS server (the default when no NATS
// URL is configured) and returns its client URL and a function that stops it.
func startEmbedded(ctx context.Context, store, listen string, maxStore int64, log *slog.Logger, level slog.Level) (string, func() error, error) {
	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: store, Listen: listen, MaxStore: maxStore, Logger: log, LogLevel: level})
	if err != nil {
		return "", nil, err
	}
	return srv.ClientURL(), srv.Close, nil
}
