package update_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kanade/kanade-agent/internal/update"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// The daemon runs the boot sentinel before anything else.
func ExampleBoot() {
	dataDir := filepath.Join(os.TempDir(), "kanade-example")
	res, err := update.Boot(filepath.Join(dataDir, "update"), "") // "" = os.Executable()
	switch {
	case errors.Is(err, update.ErrRestart):
		slog.Warn("self-update: version failed its trial boots, rolled back", "version", res.Version, "restored_from", res.RestoredFrom)
		os.Exit(update.ExitRestart) // 64: the service manager starts the restored binary
	case err != nil:
		slog.Error("self-update: boot sentinel", "err", err) // log and go on
	case res.Armed:
		slog.Info("self-update: new version on trial", "version", res.Version, "boot", res.Boots)
	}
}

// The agent runs an Updater beside its other parts.
func ExampleUpdater_Run() {
	var js jetstream.JetStream // the agent's JetStream context
	u, err := update.New(update.Options{
		StateDir:       "/var/lib/kanade/update",
		CurrentVersion: "1.0.0",
		JetStream:      js,
	})
	if err != nil {
		return
	}
	ctx := context.Background()
	// At start: hand the pending agent_update events to the obs outbox.
	for _, ev := range u.PendingEvents() {
		// enqueue ev into the obs outbox, then:
		_ = u.EventRecorded(ev)
	}
	// On every effective config change (and once at start):
	u.Offer(wire.Config{TargetVersion: "1.2.0", TargetVersionJitter: 10 * time.Minute})
	// 30 s after a healthy start:
	time.AfterFunc(30*time.Second, func() { _ = u.Healthy() })
	// Heartbeat: quarantined_versions.
	_ = u.Quarantined()
	// Run returns ErrRestart once the new binary is in place: stop the agent, exit 64.
	if err := u.Run(ctx); errors.Is(err, update.ErrRestart) {
		os.Exit(update.ExitRestart)
	}
}

// A backend or CLI signs a release; the bytes signed are SignedBytes.
func ExampleSignRelease() {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	binary := []byte("agent binary")
	flags := update.Flags{AllowDowngrade: true} // may replace a newer version
	meta := update.SignRelease(priv, "release-2026", "1.2.0", sha256.Sum256(binary), flags)
	fmt.Println(meta[update.MetaSigKid], len(meta[update.MetaSig]), meta[update.MetaFlags])
	b := update.SignedBytes("1.2.0", sha256.Sum256(binary), flags.String())
	fmt.Printf("%q ... %q\n", b[:24], b[len(b)-16:])
	// Output:
	// release-2026 88 allow-downgrade
	// "kanade-release-v2\x001.2.0\x00" ... "\x00allow-downgrade"
}
