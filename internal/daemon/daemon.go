package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
)

// Exit codes of Main.
const (
	// ExitOK is a clean stop.
	ExitOK = 0
	// ExitFailure is a runtime error: the agent or the embedded server failed.
	ExitFailure = 1
	// ExitUsage is a bad command line, environment or config file.
	ExitUsage = 2
)

// ServiceName is the Windows service name used by install, uninstall and
// service mode.
const ServiceName = "kanade-agent"

const progName = "kanade-agent"

// Main runs the kanade-agent command line and returns the process exit
// code. args excludes the program name (os.Args[1:]); getenv reads the
// environment (os.Getenv; an empty value counts as unset); stdout and stderr
// receive output. SIGINT and SIGTERM stop the agent cleanly; a second one
// kills the process.
func Main(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // the next signal gets the default behaviour: exit now
	}()
	return mainContext(ctx, args, realSystem(getenv), stdout, stderr)
}

// mainContext is Main with the stop signal as ctx and the machine as sy.
func mainContext(ctx context.Context, args []string, sy *system, stdout, stderr io.Writer) int {
	if code, ok := sessionHelperMode(ctx, args, sy, stdout, stderr); ok {
		return code
	}
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	f := newFlags(progName)
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return ExitOK
		}
		return fail(stderr, &UsageError{Err: err})
	}
	if rest := f.fs.Args(); len(rest) > 0 {
		if cmd != "" || len(rest) > 1 {
			return fail(stderr, usageErrorf("unexpected argument %q", rest[len(rest)-1]))
		}
		cmd = rest[0]
	}

	switch cmd {
	case "", "run":
		if isWindowsService() {
			return runService(ctx, f, sy)
		}
		cfg, err := loadConfig(f, sy)
		if err != nil {
			return fail(stderr, err)
		}
		return runAgent(ctx, cfg, stderr, stderr)
	case "version":
		fmt.Fprintf(stdout, "%s %s (%s %s/%s)\n", progName, Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return ExitOK
	case "help":
		usage(stdout)
		return ExitOK
	case "inventory":
		cfg, err := loadConfig(f, sy)
		if err != nil {
			return fail(stderr, err)
		}
		if err := inventoryCmd(ctx, cfg.PcID, stdout); err != nil {
			return fail(stderr, err)
		}
		return ExitOK
	case "install":
		if _, err := loadConfig(f, sy); err != nil {
			return fail(stderr, err)
		}
		return installService(f, sy, stdout, stderr)
	case "uninstall":
		return uninstallService(stdout, stderr)
	}
	return fail(stderr, usageErrorf("unknown command %q", cmd))
}

// fail prints err and returns its exit code.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", progName, err)
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Run '%s -h' for usage.\n", progName)
		return ExitUsage
	}
	return ExitFailure
}

// usage writes the help text, with every flag, its environment variable and
// its config file key.
func usage(w io.Writer) {
	fmt.Fprintf(w, `Usage: %[1]s [command] [flags]

Commands:
  run        run the agent (the default)
  version    print the version
  inventory  print this machine's inventory as JSON, without connecting anywhere
  install    install the Windows service; its flags are stored in the service's command line
             (--nats-token and --nats-password are refused there: use --nats-token-file)
  uninstall  stop and remove the Windows service

Without --nats-url the agent runs an embedded single-machine NATS server,
which opens no TCP port unless --embedded-listen asks for one. The agent
talks to it in process; every other client must present the token that the
agent generates at its first start and keeps in <data-dir>/%[4]s,
readable only by the agent's user (Unix mode 0600; on Windows the data
directory admits SYSTEM and Administrators only). The kanade CLI, run as
that user (root, or an elevated Administrator) on this machine, reads the
file by itself and connects through the local socket <data-dir>/%[5]s.
A listen address other than loopback is served with the token only, in
clear text (no TLS).

The pc id is the one configured, byte for byte (upper case stays upper
case); only the default taken from the host name is normalised.

Flags (a flag overrides its environment variable, which overrides the
config file key, which overrides the default):

  --%[2]s FILE
        TOML config file (env %[3]s)
`, progName, configFlag, configEnv, LocalConnFile, LocalSocketName)
	for _, s := range settings {
		arg := " string"
		switch s.kind {
		case kindBool:
			arg = ""
		case kindPath:
			arg = " PATH"
		case kindList:
			arg = " URLS"
		}
		fmt.Fprintf(w, "  --%s%s\n        %s\n        env %s, config key %s", s.flag, arg, s.usage, s.env, s.key())
		if s.def != "" {
			fmt.Fprintf(w, ", default %s", s.def)
		}
		fmt.Fprintln(w)
	}
}
