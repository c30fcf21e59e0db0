// Command signed-command shows command signing end to end, with nothing
// installed:
//
//  1. start an embedded, provisioned JetStream server;
//  2. make an ed25519 key and a keyring file holding its public half (the
//     same JSON the daemon's --keyring reads, and 'kanade keygen' prints);
//  3. run an agent that enforces signatures (Options.Enforcing);
//  4. send it the same script unsigned, then signed with signing.Sign: the
//     first is refused with exit 123, the second runs.
//
// Run it with: go run ./examples/signed-command
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/embedded"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "kanade-signed-")
	check(err)
	defer os.RemoveAll(dir)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// 1. The server.
	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0", Logger: logger})
	check(err)
	defer srv.Close()

	// 2. A signing key and the agents' keyring.
	pub, priv, err := ed25519.GenerateKey(nil)
	check(err)
	const kid = "ops-demo"
	keyring, _ := json.Marshal([]wire.KeyringEntry{{Kid: kid, PublicKey: base64.StdEncoding.EncodeToString(pub)}})
	keyringFile := filepath.Join(dir, "keyring.json")
	check(os.WriteFile(keyringFile, keyring, 0o600))

	// 3. An agent that refuses what its keyring did not sign.
	a, err := agent.New(agent.Options{
		PcID: "signed-demo", DataDir: filepath.Join(dir, "agent"), Servers: []string{srv.ClientURL()},
		Logger: logger, DisableInventory: true, KeyringFile: keyringFile, Enforcing: true,
	})
	check(err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	<-a.Ready()

	// 4. The backend side: unsigned, then signed.
	nc, err := nats.Connect(srv.ClientURL())
	check(err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	check(err)
	for _, sign := range []bool{false, true} {
		res := send(ctx, nc, js, a.PcID(), sign, priv, kid)
		fmt.Printf("signed=%-5v exit %d  stdout %q  stderr %q\n", sign, res.ExitCode, res.Stdout, res.Stderr)
	}

	stop()
	check(<-done)
}

// send publishes one command to pcID, signed with priv as kid when sign is
// set, and returns its result.
func send(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, pcID string, sign bool, priv ed25519.PrivateKey, kid string) *wire.ExecResult {
	shell, script := wire.ShellSh, "echo ran"
	if runtime.GOOS == "windows" {
		shell = wire.ShellCmd
	}
	cmd := wire.Command{ID: wire.AdhocID, Version: "1", RequestID: uuid.NewString(), Shell: shell, Script: script, TimeoutSecs: 10}
	resSubj, _ := subject.Result(cmd.RequestID)
	cons, err := js.OrderedConsumer(ctx, subject.StreamResults, jetstream.OrderedConsumerConfig{FilterSubjects: []string{resSubj}})
	check(err)
	body, _ := json.Marshal(cmd)
	target, _ := subject.CommandsPC(pcID)
	msg := &nats.Msg{Subject: target, Data: body}
	if sign {
		// The signature covers the exact bytes sent, a timestamp and the
		// subject: it is
		// bound to the subject it is published on, so it runs only there.
		msg.Header, err = signing.Sign(priv, kid, target, time.Now(), body)
		check(err)
	}
	check(nc.PublishMsg(msg))
	m, err := cons.Next(jetstream.FetchMaxWait(20 * time.Second))
	check(err)
	res, err := wire.DecodeExecResult(m.Data())
	check(err)
	return res
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
