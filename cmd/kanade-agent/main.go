// Command kanade-agent is the kanade endpoint agent. All of its logic lives
// in internal/daemon; see "kanade-agent -h".
package main

import (
	"os"

	"github.com/kanade/kanade-agent/internal/daemon"
)

func main() {
	os.Exit(daemon.Main(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
