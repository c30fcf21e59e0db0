// An idle agent must not wake up for nothing: the runtime's check of the CPU
// limit every second is switched off (GOMAXPROCS is set once at start).

//go:debug updatemaxprocs=0

// Command kanade-agent is the kanade endpoint agent. All of its logic lives
// in internal/daemon; see "kanade-agent -h".
//
// Build with -tags kanade_noembed for a binary without the embedded NATS
// server, for machines that always connect to a kanade backend.
package main

import (
	"os"

	"github.com/kanade/kanade-agent/internal/daemon"
)

func main() {
	os.Exit(daemon.Main(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
