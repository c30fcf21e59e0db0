package daemon

import (
	"runtime/debug"

	"github.com/kanade/kanade-agent/agent"
)

// Version returns the agent version: agent.Version as set at link time with
// -ldflags "-X github.com/kanade/kanade-agent/agent.Version=...", or, when
// that is still "dev", the main module version from the build info (set by
// go install module@version), or "dev".
func Version() string {
	if agent.Version != "" && agent.Version != "dev" {
		return agent.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
	}
	if agent.Version == "" {
		return "dev"
	}
	return agent.Version
}
