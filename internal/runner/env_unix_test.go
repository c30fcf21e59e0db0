//go:build unix

package runner

import (
	"context"
	"strings"
	"testing"
)

// TestRunScrubsSecrets: a script does not inherit the agent's KANADE_* and
// NATS_* variables (names compared case-sensitively on Unix), but gets
// everything else and the entries of Spec.Env as given.
func TestRunScrubsSecrets(t *testing.T) {
	t.Setenv("KANADE_NATS_TOKEN", "s3cret-token")
	t.Setenv("KANADE_NATS_PASSWORD", "s3cret-password")
	t.Setenv("NATS_URL", "nats://u:s3cret@host:4222")
	t.Setenv("NATS_CREDS", "/etc/s3cret.creds")
	t.Setenv("kanade_lower", "kept-lower")
	t.Setenv("NATSLIKE", "kept-natslike")
	t.Setenv("RUNNER_TEST_OTHER", "kept-other")
	s := sh("env")
	s.Env = []string{"KANADE_EXPLICIT=given"}
	r := Run(context.Background(), s)
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("%+v", r)
	}
	out := "\n" + string(r.Stdout)
	if strings.Contains(out, "s3cret") || strings.Contains(out, "\nKANADE_NATS") || strings.Contains(out, "\nNATS_") {
		t.Fatalf("secrets reached the script:\n%s", out)
	}
	for _, want := range []string{"\nkanade_lower=kept-lower\n", "\nNATSLIKE=kept-natslike\n", "\nRUNNER_TEST_OTHER=kept-other\n", "\nKANADE_EXPLICIT=given\n", "\nPATH="} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
