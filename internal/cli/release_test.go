package cli_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/cli"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/internal/update"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
)

func TestRelease(t *testing.T) {
	t.Parallel()
	dir := natstest.TempDir(t)
	key, entry := keygen(t, dir, "rel-1")
	binary := make([]byte, 200<<10)
	rand.Read(binary)
	bin := writeFile(t, dir, "kanade-agent", string(binary))
	sum := sha256.Sum256(binary)
	digest := update.FormatDigest(sum)

	srv := natstest.RunServer(t)
	k := kanade(srv.URL())

	o := k("release", "put", "--version", "1.2.3", "--file", bin, "--key", key).want(t, 0)
	mentions(t, "stdout", o.stdout, "release 1.2.3\n", "204800 bytes (200 KiB)", hex.EncodeToString(sum[:]), digest, "kid rel-1")

	// The agent's check accepts it with a keyring holding the printed entry.
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obs, err := js.ObjectStore(ctx, subject.ObjectReleases)
	if err != nil {
		t.Fatal(err)
	}
	info, err := obs.GetInfo(ctx, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	kr, err := signing.ParseKeyring([]byte("[" + entry + "]"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := update.ParseDigest(info.Digest)
	if err != nil || d != sum {
		t.Fatalf("stored digest %s (%v), want %s", info.Digest, err, digest)
	}
	if f, err := update.VerifyRelease(kr, info, "1.2.3", d); err != nil || f.AllowDowngrade {
		t.Fatalf("VerifyRelease: %+v, %v", f, err)
	}

	o = k("release", "put", "--version", "1.2.3", "--file", bin).want(t, 1)
	mentions(t, "stderr", o.stderr, "release 1.2.3 already exists", "--force")
	k("release", "put", "--version", "1.2.4", "--file", bin).want(t, 0)

	o = k("release", "ls").want(t, 0)
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two releases:\n%s", o.stdout)
	}
	mentions(t, "1.2.3 line", lines[1], "1.2.3", "204800", digest, "rel-1")
	mentions(t, "1.2.4 line", lines[2], "1.2.4", "204800", digest, "unsigned")

	keyring := writeFile(t, dir, "release-keyring.json", "["+entry+"]")
	o = k("release", "ls", "--keyring", keyring).want(t, 1)
	mentions(t, "stdout", o.stdout, "rel-1 (verified)", "unsigned (NOT VERIFIED")
	mentions(t, "stderr", o.stderr, "1 of 2 releases do not verify")

	// --force replaces a release, here with a signed one.
	k("release", "put", "--version", "1.2.4", "--file", bin, "--key", key, "--force").want(t, 0)
	k("release", "ls", "--keyring", keyring).want(t, 0)

	// --allow-downgrade is signed: the agent's check returns it.
	o = k("release", "put", "--version", "1.0.9", "--file", bin, "--key", key, "--allow-downgrade").want(t, 0)
	mentions(t, "stdout", o.stdout, "flags   allow-downgrade")
	info, err = obs.GetInfo(ctx, "1.0.9")
	if err != nil {
		t.Fatal(err)
	}
	if f, err := update.VerifyRelease(kr, info, "1.0.9", d); err != nil || !f.AllowDowngrade {
		t.Fatalf("VerifyRelease of a downgrade release: %+v, %v", f, err)
	}
	o = k("release", "ls", "--keyring", keyring).want(t, 0)
	mentions(t, "stdout", o.stdout, "rel-1, allow-downgrade (verified)")
}

func TestReleaseLsEmpty(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	o := kanade(srv.URL())("release", "ls").want(t, 0)
	mentions(t, "stderr", o.stderr, "no releases in agent_releases")
}

func TestReleaseNeedsProvision(t *testing.T) {
	t.Parallel()
	srv := natstest.RunBareServer(t)
	bin := writeFile(t, natstest.TempDir(t), "bin", "x")
	o := kanade(srv.URL())("release", "put", "--version", "1.0.0", "--file", bin).want(t, 1)
	mentions(t, "stderr", o.stderr, "agent_releases does not exist", "kanade provision")
	o = kanade(srv.URL())("exec", "--pc", "p", "echo").want(t, 1)
	mentions(t, "stderr", o.stderr, "RESULTS does not exist", "kanade provision")
}

// TestReleaseVersionCheckedFirst: a bad version is refused before the
// file is read (it does not even exist here) or a connection is made.
func TestReleaseVersionCheckedFirst(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(natstest.TempDir(t), "missing")
	for _, v := range []string{"..", "1.0/evil", "v 1", strings.Repeat("1", update.MaxVersionLen+1)} {
		o := run("--nats-url", "nats://127.0.0.1:1", "release", "put", "--version", v, "--file", missing).want(t, cli.ExitUsage)
		mentions(t, "stderr", o.stderr, "--version")
	}
}
