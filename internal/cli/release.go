package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kanade/kanade-agent/internal/update"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxRelease is the largest release binary release put uploads, in bytes.
const MaxRelease = 1 << 30

var releaseCmd = &command{
	name:    "release",
	args:    "put --version V --file BINARY [--key FILE] [--allow-downgrade] [--force] | ls [--keyring FILE]",
	summary: "publish an agent release for self-update, or list the releases",
	long: `release put uploads BINARY as object V of the agent_releases object store,
signed with --key when given (the signature covers the version, the
SHA-256 digest and the flags; agents that enforce command signatures or have
a release keyring require it), and prints the version, size and digest. An
agent never installs a version lower than the one it runs unless the release
is published with --allow-downgrade (a flag the signature covers) or the
agent allows downgrades itself. An existing release is kept unless --force:
an agent never downloads a version it already tried, so republish under a
new version instead. Agents update when target_version in agent_config
names it.

release ls lists the releases: version, size, digest, the kid that signed it
(or "unsigned") and upload time. With --keyring FILE (a release keyring,
the JSON array the agents read) each signature is also verified.

Run 'kanade release put -h' or 'kanade release ls -h' for their flags.`,
	run: runRelease,
}

var releasePutCmd = &command{
	name:    "release put",
	args:    "--version V --file BINARY [--key FILE] [--allow-downgrade] [--force]",
	summary: "upload an agent binary as release V to the agent_releases object store",
	long: `The version is checked first (1 to 128 ASCII letters, digits and . _ + -),
then the key, then the file is read (at most 1 GiB) and uploaded within
--timeout. Prints the version, size, SHA-256, signing kid and flags.`,
	run: runReleasePut,
}

var releaseLsCmd = &command{
	name:    "release ls",
	args:    "[--keyring FILE]",
	summary: "list the releases of the agent_releases object store",
	run:     runReleaseLs,
}

func runRelease(ctx context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	if err := inv.parseOnly(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usageErrorf("release needs a subcommand: put or ls")
	}
	switch rest[0] {
	case "put":
		inv.cmd = releasePutCmd
		return runReleasePut(ctx, inv, rest[1:])
	case "ls", "list":
		inv.cmd = releaseLsCmd
		return runReleaseLs(ctx, inv, rest[1:])
	}
	return usageErrorf("unknown release subcommand %q: want put or ls", rest[0])
}

func runReleasePut(ctx context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	version := fs.String("version", "", "release version `V`, the object name agents ask for, such as 1.4.0 (required)")
	file := fs.String("file", "", "the agent `BINARY` to upload (required)")
	keyFile := fs.String("key", "", "sign the release with the key in `FILE` (see 'kanade keygen')")
	force := fs.Bool("force", false, "replace an existing release of that version")
	downgrade := fs.Bool("allow-downgrade", false, "let agents running a newer version install this release (signed with --key)")
	if err := inv.parse(fs, args); err != nil {
		return err
	}
	if len(fs.Args()) > 0 {
		return usageErrorf("release put takes no arguments, got %q (use --file)", fs.Args())
	}
	if *version == "" {
		return usageErrorf("--version is required, such as 1.4.0")
	}
	if err := update.ValidVersion(*version); err != nil {
		return usageErrorf("--version: %v", strings.TrimPrefix(err.Error(), "update: "))
	}
	if *file == "" {
		return usageErrorf("--file is required: the agent binary to upload")
	}
	var (
		kid  string
		priv ed25519.PrivateKey
		err  error
	)
	if *keyFile != "" {
		if kid, priv, err = LoadKey(*keyFile); err != nil {
			return err
		}
	}
	binary, err := readBinary(*file)
	if err != nil {
		return err
	}

	js, pctx, done, err := inv.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	obs, err := js.ObjectStore(pctx, subject.ObjectReleases)
	if err != nil {
		return jsError("object store "+subject.ObjectReleases, err)
	}
	if !*force {
		old, err := obs.GetInfo(pctx, *version)
		switch {
		case err == nil:
			return fmt.Errorf("release %s already exists (%d bytes, %s): publish a new version, or pass --force to replace it", *version, old.Size, old.Digest)
		case !errors.Is(err, jetstream.ErrObjectNotFound):
			return jsError("release "+*version, err)
		}
	}
	flags := update.Flags{AllowDowngrade: *downgrade}
	info, err := update.PutRelease(pctx, obs, *version, binary, priv, kid, flags)
	if err != nil {
		return jsError("upload", err)
	}
	sum := sha256.Sum256(binary)
	if want := update.FormatDigest(sum); info.Digest != want {
		return fmt.Errorf("the server stored release %s with digest %s, but the file's is %s: upload it again", *version, info.Digest, want)
	}
	signed := "unsigned"
	if priv != nil {
		signed = "kid " + kid
	}
	w := inv.env.Stdout
	fmt.Fprintf(w, "release %s\n", *version)
	fmt.Fprintf(w, "size    %d bytes (%s)\n", info.Size, byteSize(int64(info.Size)))
	fmt.Fprintf(w, "sha256  %s\n", hex.EncodeToString(sum[:]))
	fmt.Fprintf(w, "digest  %s\n", info.Digest)
	fmt.Fprintf(w, "signed  %s\n", signed)
	if f := flags.String(); f != "" {
		fmt.Fprintf(w, "flags   %s\n", f)
	}
	return nil
}

// readBinary reads a release file of at most MaxRelease bytes.
func readBinary(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--file: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("--file %s is a directory, not an agent binary", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxRelease+1))
	if err != nil {
		return nil, fmt.Errorf("--file %s: %w", path, err)
	}
	if len(b) > MaxRelease {
		return nil, fmt.Errorf("--file %s is over %s: not an agent binary", path, byteSize(MaxRelease))
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("--file %s is empty", path)
	}
	return b, nil
}

func runReleaseLs(ctx context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	keyringFile := fs.String("keyring", "", "verify signatures with the release keyring in `FILE`")
	if err := inv.parse(fs, args); err != nil {
		return err
	}
	if len(fs.Args()) > 0 {
		return usageErrorf("release ls takes no arguments, got %q", fs.Args())
	}
	var keyring *signing.Keyring
	if *keyringFile != "" {
		k, err := signing.LoadFile(*keyringFile)
		if err != nil {
			return fmt.Errorf("--keyring: %v", strings.TrimPrefix(err.Error(), "signing: "))
		}
		if k.Len() == 0 {
			return fmt.Errorf("--keyring %s holds no keys, so it verifies nothing", *keyringFile)
		}
		keyring = k
	}
	js, lctx, done, err := inv.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	obs, err := js.ObjectStore(lctx, subject.ObjectReleases)
	if err != nil {
		return jsError("object store "+subject.ObjectReleases, err)
	}
	infos, err := obs.List(lctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		fmt.Fprintf(inv.env.Stderr, "kanade release ls: no releases in %s (publish one with 'kanade release put')\n", subject.ObjectReleases)
		return nil
	}
	if err != nil {
		return jsError("list "+subject.ObjectReleases, err)
	}
	sort.SliceStable(infos, func(i, j int) bool { return infos[i].ModTime.Before(infos[j].ModTime) })
	tw := tabwriter.NewWriter(inv.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSIZE\tDIGEST\tSIGNED\tUPLOADED")
	bad := 0
	for _, info := range infos {
		signed := releaseKid(info)
		if signed == "" {
			signed = "unsigned"
		}
		if f, _ := update.ReleaseFlags(info); f != (update.Flags{}) {
			signed += ", " + f.String()
		}
		if keyring != nil {
			if err := verifyListed(keyring, info); err != nil {
				bad++
				signed += " (NOT VERIFIED: " + oneLine(strings.TrimPrefix(err.Error(), "update: ")) + ")"
			} else {
				signed += " (verified)"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", info.Name, info.Size, info.Digest, signed, info.ModTime.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d releases do not verify against --keyring %s: agents with that release keyring refuse them", bad, len(infos), *keyringFile)
	}
	return nil
}

// releaseKid returns the kid in a release's signature metadata, or "".
func releaseKid(info *jetstream.ObjectInfo) string {
	if v := info.Metadata[update.MetaSigKid]; v != "" {
		return v
	}
	for k, vs := range info.Headers {
		if strings.EqualFold(k, update.MetaSigKid) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// verifyListed checks a listed release's signature against keyring.
func verifyListed(keyring *signing.Keyring, info *jetstream.ObjectInfo) error {
	d, err := update.ParseDigest(info.Digest)
	if err != nil {
		return err
	}
	_, err = update.VerifyRelease(keyring, info, info.Name, d)
	return err
}
