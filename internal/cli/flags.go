package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// DefaultURL is the NATS server used when neither --nats-url nor
// KANADE_NATS_URL is set and no local agent's credentials file
// (LocalConnFile under --data-dir) exists.
const DefaultURL = "nats://127.0.0.1:4222"

// DefaultTimeout is the default of --timeout.
const DefaultTimeout = 30 * time.Second

// globals are the connection flags every command accepts.
type globals struct {
	urls, creds, token, tokenFile, nkey, user, password string
	tlsCA, tlsCert, tlsKey                              string
	dataDir                                             string
	timeout                                             time.Duration

	// urlSet is true when --nats-url or KANADE_NATS_URL gave the URLs;
	// otherwise the local agent's embedded server is tried first.
	urlSet bool
	// credsSet is true when a credential flag or variable is given.
	credsSet bool
}

// globalFlag describes one global flag.
type globalFlag struct {
	name, env, arg, usage, def string
}

var globalFlags = []globalFlag{
	{"nats-url", "KANADE_NATS_URL", "URLS", "NATS server URLs, comma-separated", DefaultURL},
	{"nats-creds", "KANADE_NATS_CREDS", "FILE", "NATS credentials file (JWT and nkey seed)", ""},
	{"nats-nkey", "KANADE_NATS_NKEY", "FILE", "NATS nkey seed file", ""},
	{"nats-token", "KANADE_NATS_TOKEN", "TOKEN", "NATS auth token (on Windows, with --nats-url, the registry value " + registryTokenPath + " wins over KANADE_NATS_TOKEN when this user can read it, as upstream)", ""},
	{"nats-token-file", "KANADE_NATS_TOKEN_FILE", "FILE", "file holding the NATS auth token (surrounding white space ignored)", ""},
	{"nats-user", "KANADE_NATS_USER", "USER", "NATS user name", ""},
	{"nats-password", "KANADE_NATS_PASSWORD", "PASSWORD", "NATS password (with --nats-user)", ""},
	{"tls-ca", "KANADE_TLS_CA", "FILE", "PEM file of CAs to trust for the server certificate", ""},
	{"tls-cert", "KANADE_TLS_CERT", "FILE", "PEM client certificate (with --tls-key)", ""},
	{"tls-key", "KANADE_TLS_KEY", "FILE", "PEM client key (with --tls-cert)", ""},
	{"data-dir", "KANADE_DATA_DIR", "DIR", "data directory of the local kanade-agent, whose " + LocalConnFile + " tells how to reach its embedded server without --nats-url (default: the agent's default, " + defaultDataDirText + ")", ""},
	{"timeout", "KANADE_TIMEOUT", "DURATION", "bound on connecting and on each request; exec --pc waits this long by default", DefaultTimeout.String()},
}

func (g *globals) ptr(name string) *string {
	switch name {
	case "nats-url":
		return &g.urls
	case "nats-creds":
		return &g.creds
	case "nats-nkey":
		return &g.nkey
	case "nats-token":
		return &g.token
	case "nats-token-file":
		return &g.tokenFile
	case "nats-user":
		return &g.user
	case "nats-password":
		return &g.password
	case "tls-ca":
		return &g.tlsCA
	case "tls-cert":
		return &g.tlsCert
	case "tls-key":
		return &g.tlsKey
	case "data-dir":
		return &g.dataDir
	}
	return nil
}

// register adds the global flags to fs, bound to g. Their defaults are
// g's current values, as registering sets them: a flag given before the
// command name survives the command's own flag set.
func (g *globals) register(fs *flag.FlagSet) {
	for _, f := range globalFlags {
		if f.name == "timeout" {
			fs.DurationVar(&g.timeout, f.name, g.timeout, f.usage)
			continue
		}
		p := g.ptr(f.name)
		fs.StringVar(p, f.name, *p, f.usage)
	}
}

// resolve fills the global flags not given on the command line from the
// environment, then from the defaults, and checks them. Every error is a
// usage error naming the flag or variable.
func (g *globals) resolve(getenv func(string) string, parsed []*flag.FlagSet) error {
	set := map[string]bool{}
	for _, fs := range parsed {
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	}
	for _, f := range globalFlags {
		if set[f.name] {
			continue
		}
		v := strings.TrimSpace(getenv(f.env))
		if f.name == "timeout" {
			if v == "" {
				g.timeout = DefaultTimeout
				continue
			}
			d, err := time.ParseDuration(v)
			if err != nil {
				return usageErrorf("environment variable %s=%q is not a duration such as 30s or 2m", f.env, v)
			}
			g.timeout = d
			continue
		}
		if v == "" {
			v = f.def
		} else if f.name == "nats-url" {
			set[f.name] = true
		}
		*g.ptr(f.name) = v
	}
	g.urlSet = set["nats-url"]
	if g.tokenFile != "" {
		if g.token != "" {
			return usageErrorf("give only one of --nats-token and --nats-token-file (or their KANADE_* variables)")
		}
		b, err := os.ReadFile(g.tokenFile)
		if err != nil {
			return usageErrorf("--nats-token-file: %v", err)
		}
		if g.token = strings.TrimSpace(string(b)); g.token == "" {
			return usageErrorf("--nats-token-file %s is empty", g.tokenFile)
		}
	}
	if readRegistryToken != nil && g.urlSet && !set["nats-token"] && !set["nats-token-file"] && g.user == "" && g.creds == "" && g.nkey == "" {
		// A user who may not read the hardened key simply goes without.
		if tok, err := readRegistryToken(); err == nil && strings.TrimSpace(tok) != "" {
			g.token = strings.TrimSpace(tok)
		}
	}
	g.credsSet = g.token != "" || g.user != "" || g.creds != "" || g.nkey != ""
	if g.timeout <= 0 {
		return usageErrorf("--timeout %v must be positive, such as 30s", g.timeout)
	}
	if len(g.servers()) == 0 {
		return usageErrorf("--nats-url is empty; give one or more NATS URLs, comma-separated")
	}
	n := 0
	for _, v := range []string{g.token, g.user, g.creds, g.nkey} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return usageErrorf("give at most one of --nats-token, --nats-user, --nats-creds and --nats-nkey (or their KANADE_* variables)")
	}
	if g.password != "" && g.user == "" {
		return usageErrorf("--nats-password needs --nats-user")
	}
	if (g.tlsCert == "") != (g.tlsKey == "") {
		return usageErrorf("a TLS client certificate needs both --tls-cert and --tls-key")
	}
	return nil
}

// servers returns the NATS URLs of --nats-url.
func (g *globals) servers() []string {
	var out []string
	for _, u := range strings.Split(g.urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func globalUsage(w io.Writer) {
	fmt.Fprintln(w, "Global flags:")
	for _, f := range globalFlags {
		fmt.Fprintf(w, "  --%s %s\n        %s\n        env %s", f.name, f.arg, f.usage, f.env)
		if f.def != "" {
			fmt.Fprintf(w, ", default %s", f.def)
		}
		fmt.Fprintln(w)
	}
}

// flags returns a new flag set for the invocation's command. The command
// adds its own flags, then calls parse.
func (inv *invocation) flags() *flag.FlagSet {
	name := progName
	if inv.cmd != nil {
		name += " " + inv.cmd.name
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse adds the global flags to fs and parses args, stopping at the first
// positional argument (fs.Args() holds it and the rest). -h prints the
// command's usage on stdout and returns errHelp. Then it resolves the
// global flags.
func (inv *invocation) parse(fs *flag.FlagSet, args []string) error {
	if err := inv.parseOnly(fs, args); err != nil {
		return err
	}
	return inv.g.resolve(inv.env.Getenv, inv.parsed)
}

// parseOnly is parse without resolving the global flags.
func (inv *invocation) parseOnly(fs *flag.FlagSet, args []string) error {
	own := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { own[f.Name] = true })
	inv.g.register(fs)
	if err := inv.parseErr(fs, own, fs.Parse(args)); err != nil {
		return err
	}
	inv.parsed = append(inv.parsed, fs)
	return nil
}

// parseErr turns an error of fs.Parse into errHelp (after printing the
// usage with the flags in own) or a usage error.
func (inv *invocation) parseErr(fs *flag.FlagSet, own map[string]bool, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		inv.usage(inv.env.Stdout, fs, own)
		return errHelp
	}
	return usageErr(flagError(err))
}

// parseInterspersed is parse for commands whose flags may also follow
// their positional arguments ("kanade logs PC --tail 50"). It returns the
// positional arguments; everything after "--" is positional.
func (inv *invocation) parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	own := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { own[f.Name] = true })
	if err := inv.parseOnly(fs, args); err != nil {
		return nil, err
	}
	var pos []string
	for {
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" || len(rest) == 0 {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
		if err := inv.parseErr(fs, own, fs.Parse(args)); err != nil {
			return nil, err
		}
	}
	return pos, inv.g.resolve(inv.env.Getenv, inv.parsed)
}

// usage prints the command's usage: synopsis, description and its own
// flags (those in own).
func (inv *invocation) usage(w io.Writer, fs *flag.FlagSet, own map[string]bool) {
	c := inv.cmd
	if c == nil {
		mainUsage(w)
		return
	}
	fmt.Fprintf(w, "Usage: %s %s", progName, c.name)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", c.summary)
	if c.long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.long))
	}
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if !own[f.Name] {
			return
		}
		if first {
			fmt.Fprintf(w, "\nFlags:\n")
			first = false
		}
		arg, text := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		fmt.Fprintf(w, "  --%s%s\n        %s", f.Name, arg, text)
		if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "0s" {
			fmt.Fprintf(w, " (default %s)", d)
		}
		fmt.Fprintln(w)
	})
	names := make([]string, len(globalFlags))
	for i, f := range globalFlags {
		names[i] = "--" + f.name
	}
	fmt.Fprintf(w, "\nGlobal flags (see 'kanade help'): %s\n", strings.Join(names, ", "))
}
