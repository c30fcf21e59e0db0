package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

var pingCmd = &command{
	name:    "ping",
	args:    "PC",
	summary: "ask an agent for a fresh heartbeat and print it as JSON",
	long: `Sends a request on agents.<PC>.ping and prints the agent's reply, a
heartbeat (pc id, version, OS, command keys, outbox backlog...), as
indented JSON. Exits 1 when no agent answers within --timeout.`,
	run: runPing,
}

var logsCmd = &command{
	name:    "logs",
	args:    "PC [--tail N] [--key FILE]",
	summary: "print the tail of an agent's log",
	long: `Sends {"tail_lines":N} on logs.fetch.<PC> and prints the text the agent
returns: the last N lines of its log file, at most 800 KiB. Exits 1 when no
agent answers within --timeout, or when the agent reports that it has no
log file, cannot read it, or refuses the request.

An agent that enforces command signatures answers only a request signed
for its own subject at most 5 minutes before it arrives: give --key FILE
(a key of the agents' keyring, as for 'exec --key') to sign the request
for logs.fetch.<PC>.`,
	run: runLogs,
}

var killCmd = &command{
	name:    "kill",
	args:    "EXEC_ID [--key FILE]",
	summary: "kill a pending or running command by its exec id",
	long: `Publishes an empty message on kill.<EXEC_ID>. Every agent holding that
exec (waiting or running) kills the script's whole process tree; its result
then has exit code -1 and the note "killed by remote signal (kill.<EXEC_ID>)".
exec prints the exec id it uses on stderr (or set it with --exec-id).

An agent that enforces command signatures ignores a kill that is not
signed for its own subject: give --key FILE (a key of the agents' keyring,
as for 'exec --key') to sign the message for kill.<EXEC_ID>.

Core NATS gives no acknowledgement. When no agent listens on the subject
at that moment (the command finished, never arrived, or the id is wrong),
kill says so on stderr; it exits 0 either way, since the message was sent.`,
	run: runKill,
}

// DefaultTailLines is the default of logs --tail, as the agent's own default.
const DefaultTailLines = 500

// onePositional parses fs with interspersed flags and returns its single
// positional argument, named what in errors.
func (inv *invocation) onePositional(fs *flag.FlagSet, args []string, what string) (string, error) {
	pos, err := inv.parseInterspersed(fs, args)
	if err != nil {
		return "", err
	}
	switch len(pos) {
	case 0:
		return "", usageErrorf("missing %s", what)
	case 1:
		return pos[0], nil
	default:
		return "", usageErrorf("want one %s, got %d arguments: %q", what, len(pos), pos)
	}
}

func runPing(ctx context.Context, inv *invocation, args []string) error {
	pc, err := inv.onePositional(inv.flags(), args, "pc id (kanade ping PC)")
	if err != nil {
		return err
	}
	subj, err := subject.Ping(pc)
	if err != nil {
		return usageErr(err)
	}
	reply, err := inv.request(ctx, subj, pc, nil)
	if err != nil {
		return err
	}
	if t := bytes.TrimSpace(reply); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("malformed reply on %s: not a JSON heartbeat object: %q", subj, shortBytes(reply))
	}
	if _, err := wire.DecodeHeartbeat(reply); err != nil {
		return fmt.Errorf("malformed reply on %s (%d bytes): %s", subj, len(reply), oneLine(err.Error()))
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(reply), "", "  "); err != nil {
		return fmt.Errorf("malformed reply on %s: %w", subj, err)
	}
	buf.WriteByte('\n')
	_, err = inv.env.Stdout.Write(buf.Bytes())
	return err
}

func runLogs(ctx context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	tail := fs.Int("tail", DefaultTailLines, "fetch the last `N` lines (0: as much as the agent sends, at most 800 KiB)")
	keyFile := fs.String("key", "", "sign the request with the key in `FILE`, for agents that enforce signatures (see 'kanade keygen')")
	pc, err := inv.onePositional(fs, args, "pc id (kanade logs PC)")
	if err != nil {
		return err
	}
	if *tail < 0 {
		return usageErrorf("--tail %d must not be negative", *tail)
	}
	subj, err := subject.LogsFetch(pc)
	if err != nil {
		return usageErr(err)
	}
	body, err := json.Marshal(wire.LogsFetchRequest{TailLines: *tail})
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: subj, Data: body}
	if err := signWith(*keyFile, msg, "logs request"); err != nil {
		return err
	}
	reply, err := inv.requestMsg(ctx, msg, pc)
	if err != nil {
		return err
	}
	// The agent answers problems with one of these notes instead of log text.
	for _, note := range []string{
		"kanade-agent: this agent writes no log file",
		"kanade-agent: cannot read log: ",
		"kanade-agent: bad logs.fetch request: ",
		"kanade-agent: logs.fetch refused: ",
	} {
		if bytes.HasPrefix(reply, []byte(note)) && bytes.Count(reply, []byte{'\n'}) <= 1 {
			return fmt.Errorf("pc %s answered: %s", pc, oneLine(strings.TrimPrefix(string(reply), "kanade-agent: ")))
		}
	}
	if _, err := inv.env.Stdout.Write(reply); err != nil {
		return err
	}
	if len(reply) > 0 && reply[len(reply)-1] != '\n' {
		fmt.Fprintln(inv.env.Stdout)
	}
	return nil
}

// request sends a request to the agent pc on subj and returns the reply.
func (inv *invocation) request(ctx context.Context, subj, pc string, body []byte) ([]byte, error) {
	return inv.requestMsg(ctx, &nats.Msg{Subject: subj, Data: body}, pc)
}

// requestMsg sends msg (headers included) as a request to the agent pc and
// returns the reply.
func (inv *invocation) requestMsg(ctx context.Context, msg *nats.Msg, pc string) ([]byte, error) {
	nc, err := inv.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	rctx, cancel := context.WithTimeout(ctx, inv.g.timeout)
	defer cancel()
	m, err := nc.RequestMsgWithContext(rctx, msg)
	if err != nil {
		return nil, requestError(msg.Subject, pc, inv.g.timeout, err)
	}
	return m.Data, nil
}

func runKill(ctx context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	keyFile := fs.String("key", "", "sign the kill with the key in `FILE`, for agents that enforce signatures (see 'kanade keygen')")
	execID, err := inv.onePositional(fs, args, "exec id (kanade kill EXEC_ID)")
	if err != nil {
		return err
	}
	subj, err := subject.Kill(execID)
	if err != nil {
		return usageErr(err)
	}
	msg := &nats.Msg{Subject: subj}
	if err := signWith(*keyFile, msg, "kill"); err != nil {
		return err
	}
	nc, err := inv.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	listening, err := publishProbe(ctx, nc, msg, inv.g.timeout)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", subj, err)
	}
	fmt.Fprintf(inv.env.Stdout, "sent %s\n", subj)
	if *keyFile != "" {
		fmt.Fprintf(inv.env.Stderr, "kanade kill: signed as %s\n", msg.Header.Get(signing.HeaderKid))
	}
	if !listening {
		fmt.Fprintf(inv.env.Stderr, "kanade kill: note: no agent listens on %s right now: exec %s has finished, has not reached an agent, or the id is wrong\n", subj, execID)
	}
	return nil
}

// publishProbe publishes msg with a reply inbox and reports whether anyone
// was subscribed to its subject: the server answers a message with a reply
// subject and no subscriber with a "no responders" status. The agent does
// not reply to kill messages; only that status is awaited, which the
// server sends before it answers the flush.
func publishProbe(ctx context.Context, nc *nats.Conn, msg *nats.Msg, timeout time.Duration) (bool, error) {
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return false, err
	}
	defer sub.Unsubscribe()
	m := *msg
	m.Reply = inbox
	if err := nc.PublishMsg(&m); err != nil {
		return false, err
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return false, err
	}
	// NextMsg reports the 503 status as nats.ErrNoResponders; a timeout
	// means no status came, so someone listens.
	_, err = sub.NextMsg(100 * time.Millisecond)
	return !errors.Is(err, nats.ErrNoResponders), nil
}

// signWith signs msg with the key in keyFile (a --key flag) for its
// subject; "" leaves it unsigned.
func signWith(keyFile string, msg *nats.Msg, what string) error {
	s, err := loadSigner(keyFile)
	if err != nil {
		return err
	}
	return s.sign(msg, what)
}

// shortBytes returns at most the first 80 bytes of b, for messages.
func shortBytes(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
