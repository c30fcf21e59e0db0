package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// levelTrace is the slog level of nats-server trace lines.
const levelTrace = slog.LevelDebug - 4

// logAdapter implements server.Logger on top of slog. Fatalf does not exit
// the process: it logs at error level and reports the error through fatal.
type logAdapter struct {
	l     *slog.Logger
	min   slog.Leveler
	fatal func(error)
}

func (a *logAdapter) log(level slog.Level, format string, v []any) {
	if level < a.min.Level() || !a.l.Enabled(context.Background(), level) {
		return
	}
	a.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
}

// Noticef logs at Info.
func (a *logAdapter) Noticef(format string, v ...any) { a.log(slog.LevelInfo, format, v) }

// Warnf logs at Warn.
func (a *logAdapter) Warnf(format string, v ...any) { a.log(slog.LevelWarn, format, v) }

// Errorf logs at Error.
func (a *logAdapter) Errorf(format string, v ...any) { a.log(slog.LevelError, format, v) }

// Debugf logs at Debug.
func (a *logAdapter) Debugf(format string, v ...any) { a.log(slog.LevelDebug, format, v) }

// Tracef logs at Debug-4.
func (a *logAdapter) Tracef(format string, v ...any) { a.log(levelTrace, format, v) }

// Fatalf logs at Error, whatever the minimum level, and reports the error.
func (a *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.l.Error(msg, "fatal", true)
	if a.fatal != nil {
		a.fatal(errors.New(msg))
	}
}
