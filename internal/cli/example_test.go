package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kanade/kanade-agent/internal/cli"
)

// Run runs the command line in process; a usage error exits 2 with a
// message on stderr.
func ExampleRun() {
	var stderr strings.Builder
	code := cli.Run(context.Background(), []string{"exec", "--pc", "desktop-01"}, cli.Env{Stderr: &stderr})
	fmt.Println(code)
	fmt.Print(stderr.String())
	// Output:
	// 2
	// kanade exec: no script: give it as arguments after the flags, or "-" to read it from standard input
	// Run 'kanade exec -h' for usage.
}

// keygen writes a private key file that LoadKey reads back, and prints the
// public keyring entry for the agents.
func ExampleLoadKey() {
	dir, err := os.MkdirTemp("", "kanade-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "ops.key")

	var entry strings.Builder
	cli.Run(context.Background(), []string{"keygen", "--kid", "ops-2026", "--out", file}, cli.Env{Stdout: &entry})
	fmt.Println(strings.HasPrefix(entry.String(), `{"kid":"ops-2026","public_key":"`))

	kid, priv, err := cli.LoadKey(file)
	fmt.Println(kid, len(priv), err)
	// Output:
	// true
	// ops-2026 64 <nil>
}
