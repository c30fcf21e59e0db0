package daemon

import (
	"context"
	"errors"
	"io"
)

// inventoryCmd runs the "inventory" subcommand: it collects this machine's
// inventory for pcID and writes it to w (stdout), without connecting to
// NATS. The daemon passes the configured pc id; ctx ends on SIGINT/SIGTERM.
//
// HOOK: nil until the inventory package is wired in. To wire it, set it in
// this file (for example in an init function calling the inventory
// collector); nothing else in the daemon needs to change.
var inventoryCmd func(ctx context.Context, pcID string, w io.Writer) error

// errInventoryUnavailable is returned by the inventory subcommand while
// inventoryCmd is nil.
var errInventoryUnavailable = errors.New("inventory: not available in this build of kanade-agent")
