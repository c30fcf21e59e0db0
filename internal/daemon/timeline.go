package daemon

import (
	"log/slog"
	"runtime"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/timeline"
)

// timelineUsage documents the timeline setting.
const timelineUsage = "record the PC's timeline (boot, shutdown, sleep, resume, logon, logoff, lock, unlock) as obs events: " +
	"on Windows from the System and Security event logs, on Linux from /var/log/wtmp and, where journalctl is installed, " +
	"sleep and resume from the systemd journal; polled every 5 minutes " +
	"and at start, looking back at most 24 hours; the read positions are kept in the data directory " +
	"(winlog-reader-watermark.json, wtmp-reader-watermark.json, journal-reader-watermark.json). Off elsewhere"

// timelineSources returns the agent's ObsSources: the timeline source when
// cfg.Timeline is set and the system is Windows or Linux, else none. A
// source that cannot be made is logged and left out: the agent runs
// without it.
func timelineSources(cfg *Config, log *slog.Logger) []agent.ObsSource {
	if !cfg.Timeline || (runtime.GOOS != "windows" && runtime.GOOS != "linux") {
		return nil
	}
	src, err := timeline.New(timeline.Options{Dir: cfg.DataDir, Log: log})
	if err != nil {
		log.Error("timeline off", "err", err)
		return nil
	}
	return []agent.ObsSource{src}
}
