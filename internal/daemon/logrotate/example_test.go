package logrotate_test

import (
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/kanade/kanade-agent/internal/daemon/logrotate"
)

// Log through slog into a file that rotates every 10 MiB and keeps three
// files: agent.log, agent.log.1 and agent.log.2.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "logrotate")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	w, err := logrotate.Open(filepath.Join(dir, "logs", "agent.log"), logrotate.Options{MaxSize: 10 << 20, MaxFiles: 3})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	logger := slog.New(slog.NewTextHandler(w, nil))
	logger.Info("hello")

	b, _ := os.ReadFile(w.Path())
	fmt.Println(len(b) > 0)
	// Output: true
}
