//go:build windows

package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
	"golang.org/x/sys/windows"
)

// TestSecretReadableByUsersWarns: on Windows a token file that Users may
// read is read, with a warning naming it and how to restrict it (files
// below %ProgramData% inherit read for Users); one Everyone may write is
// refused.
func TestSecretReadableByUsersWarns(t *testing.T) {
	dir := natstest.TempDir(t)
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	setDACL := func(sddl string) {
		sd, err := windows.SecurityDescriptorFromString(sddl)
		if err != nil {
			t.Fatal(err)
		}
		dacl, _, err := sd.DACL()
		if err != nil {
			t.Fatal(err)
		}
		if err := windows.SetNamedSecurityInfo(tok, windows.SE_FILE_OBJECT,
			windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Under Wine every file shows Everyone read whatever is set.
	setDACL("D:P(A;;FA;;;OW)(A;;FA;;;SY)(A;;FA;;;BA)(A;;FR;;;BU)")
	cfg, err := load(t, []string{"--nats-url", "nats://x", "--nats-token-file", tok}, nil, "")
	if err != nil || cfg.Token != "s3cret" {
		t.Fatalf("load = %v, want the token read", err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], tok) || !strings.Contains(cfg.Warnings[0], "may read it") ||
		!strings.Contains(cfg.Warnings[0], "icacls") || strings.Contains(cfg.Warnings[0], "s3cret") {
		t.Fatalf("warnings %q, want one naming the file, who may read it and how to restrict it", cfg.Warnings)
	}
	setDACL("D:P(A;;FA;;;OW)(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;WD)")
	if _, err := load(t, []string{"--nats-url", "nats://x", "--nats-token-file", tok}, nil, ""); err == nil ||
		!strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "may write it") {
		t.Fatalf("load = %v, want the writable token file refused", err)
	}
}
