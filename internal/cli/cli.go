package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// Exit codes of Run. exec also exits with the script's own exit code; see
// the package documentation for its rules.
const (
	// ExitOK means the command did what was asked.
	ExitOK = 0
	// ExitFailure is a runtime failure: no connection, a missing stream, a
	// malformed reply, a file that cannot be written. exec also uses it for
	// a script exit code outside 0..255 (such as -1, killed or timed out) and,
	// with --group or --all, for "some result was not 0".
	ExitFailure = 1
	// ExitUsage is a bad command line or environment variable.
	ExitUsage = 2
	// ExitNoResult is exec's code when no result arrived within --wait.
	ExitNoResult = 2
)

// Version is the version of kanade, set at link time with
// -ldflags "-X github.com/kanade/kanade-agent/internal/cli.Version=1.2.3".
// When it is "dev", the main module version from the build info is used
// when there is one (go install module@version).
var Version = "dev"

const progName = "kanade"

// Env is what one run of the command line sees of its process.
type Env struct {
	// Stdin is read by "exec -" (the script). Nil reads as empty.
	Stdin io.Reader
	// Stdout receives the results: command output, JSON, listings.
	Stdout io.Writer
	// Stderr receives errors, notes and summaries.
	Stderr io.Writer
	// Getenv reads the environment (KANADE_NATS_URL and friends); an empty
	// value counts as unset. Nil means an empty environment.
	Getenv func(string) string
}

// Main runs the kanade command line with the process's standard input and
// environment and returns the process exit code. args excludes the program
// name (os.Args[1:]). ctx ends the run early (the caller cancels it on
// SIGINT or SIGTERM).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Run(ctx, args, Env{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv})
}

// Run runs the kanade command line with args (without the program name)
// against env and returns the exit code. It never panics on bad input and
// never calls os.Exit, so tests run it in process.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	inv := &invocation{env: env}

	gfs := flag.NewFlagSet(progName, flag.ContinueOnError)
	gfs.SetOutput(io.Discard)
	inv.g.register(gfs)
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			mainUsage(env.Stdout)
			return ExitOK
		}
		return inv.fail("", usageErr(flagError(err)))
	}
	inv.parsed = append(inv.parsed, gfs)
	rest := gfs.Args()
	if len(rest) == 0 {
		mainUsage(env.Stderr)
		return ExitUsage
	}
	name, rest := rest[0], rest[1:]
	c := lookup(name)
	if c == nil {
		return inv.fail("", usageErrorf("unknown command %q; run 'kanade help' for the list", name))
	}
	inv.cmd = c
	return inv.exit(c.run(ctx, inv, rest))
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis after the name, e.g. "[flags] PC"
	summary string // one line for "kanade help"
	long    string // paragraphs after the synopsis in "kanade CMD -h"
	run     func(ctx context.Context, inv *invocation, args []string) error
}

// commands lists the subcommands in help order. It is filled in init to
// break the cycle through help's run function.
var commands []*command

func init() {
	commands = []*command{
		execCmd, pingCmd, logsCmd, killCmd, tailCmd, scheduleCmd, jobCmd, obsCmd, provisionCmd, consumerCmd, keygenCmd, releaseCmd,
		{name: "version", args: "", summary: "print the version", run: runVersion},
		{name: "help", args: "[COMMAND]", summary: "list the commands, or show one command's usage", run: runHelp},
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// invocation is the state of one Run.
type invocation struct {
	env    Env
	g      globals
	cmd    *command
	parsed []*flag.FlagSet // flag sets parsed so far, for globals.resolve
}

// exitError makes Run exit with code after printing msg (when not empty).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageError is a bad command line or environment variable: exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErr(err error) error { return &usageError{err: err} }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// errHelp is returned by a command's parse when -h was given; its usage
// has been printed on stdout.
var errHelp = errors.New("help shown")

// exit maps a command's error to an exit code, printing it.
func (inv *invocation) exit(err error) int {
	name := ""
	if inv.cmd != nil {
		name = inv.cmd.name
	}
	return inv.fail(name, err)
}

func (inv *invocation) fail(cmd string, err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return ExitOK
	}
	prefix := progName
	if cmd != "" {
		prefix += " " + cmd
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(inv.env.Stderr, "%s: %s\n", prefix, ee.msg)
		}
		return ee.code
	}
	fmt.Fprintf(inv.env.Stderr, "%s: %s\n", prefix, oneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) {
		if cmd != "" {
			fmt.Fprintf(inv.env.Stderr, "Run '%s %s -h' for usage.\n", progName, cmd)
		} else {
			fmt.Fprintf(inv.env.Stderr, "Run '%s help' for usage.\n", progName)
		}
		return ExitUsage
	}
	return ExitFailure
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// flagError rewrites the flag package's messages to name flags with "--".
func flagError(err error) error {
	msg := err.Error()
	msg = strings.Replace(msg, "flag provided but not defined: -", "unknown flag --", 1)
	msg = strings.Replace(msg, "flag needs an argument: -", "flag needs a value: --", 1)
	if strings.HasPrefix(msg, "invalid value ") {
		msg = strings.Replace(msg, " for flag -", " for flag --", 1)
	}
	return errors.New(msg)
}

func mainUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage: %s [global flags] COMMAND [flags] [args]

kanade is the operator command line of the kanade endpoint agent: it sends
commands to agents over NATS and waits for their results, asks agents for
heartbeats and logs, provisions a NATS server, and manages signing keys and
agent releases.

Commands:
`, progName)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run 'kanade COMMAND -h' for a command's flags.

Global flags go before or after the command name (exec takes every flag,
global ones included, before its script). A flag overrides its environment
variable, which overrides the default.

Without --nats-url (and KANADE_NATS_URL), kanade talks to the kanade-agent
of this machine when it runs its embedded server (no --nats-url of its
own): it reads `+LocalConnFile+` in the agent's data directory (--data-dir;
by default the agent's default for this user, then /var/lib/kanade, the
root agent's, off Windows), which holds the server's token and its
local socket (or TCP address). The file is readable only by the agent's
user: run kanade as root (Windows: an elevated Administrator) or as the
user who runs the agent. With --nats-url naming the address in that file,
kanade uses its token too. Otherwise kanade connects to %s.

`, DefaultURL)
	globalUsage(w)
	fmt.Fprint(w, `
Exit codes: 0 success; 1 runtime failure; 2 usage error. exec exits with the
script's exit code when it fits 0..255 (1 otherwise), and 2 when no result
arrived within --wait; see 'kanade exec -h'.
`)
}

func runHelp(_ context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	if err := inv.parse(fs, args); err != nil {
		return err
	}
	switch rest := fs.Args(); len(rest) {
	case 0:
		mainUsage(inv.env.Stdout)
		return nil
	case 1:
		c := lookup(rest[0])
		if c == nil || c.name == "help" {
			return usageErrorf("unknown command %q; run 'kanade help' for the list", rest[0])
		}
		// Show the command's own usage, with its flags.
		return inv.exitHelp(c)
	default:
		return usageErrorf("help takes at most one command name, got %d arguments", len(rest))
	}
}

// exitHelp prints c's usage on stdout by running it with -h.
func (inv *invocation) exitHelp(c *command) error {
	sub := &invocation{env: inv.env, cmd: c}
	err := c.run(context.Background(), sub, []string{"-h"})
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func runVersion(_ context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	if err := inv.parse(fs, args); err != nil {
		return err
	}
	if len(fs.Args()) > 0 {
		return usageErrorf("version takes no arguments")
	}
	fmt.Fprintf(inv.env.Stdout, "%s %s (%s %s/%s)\n", progName, version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// version returns Version, or the main module's version from the build
// info when Version is "dev".
func version() string {
	if Version != "" && Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
	}
	return "dev"
}

// errorsIsAny reports whether err matches any of targets.
func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
