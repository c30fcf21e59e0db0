package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
	"golang.org/x/sys/windows"
)

// TestSecretFileACL: the credentials file admits SYSTEM, Administrators
// and its owner only, whatever the folder would pass on.
func TestSecretFileACL(t *testing.T) {
	dir := natstest.TempDir(t)
	if err := writeLocalConn(dir, LocalConn{Token: strings.Repeat("a", 64)}); err != nil {
		t.Fatal(err)
	}
	path := LocalConnPath(dir)
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	// (Wine drops the protected flag "D:P" from what it reports, so only
	// the grants are checked.)
	s := sd.String()
	if !strings.Contains(s, ";;;SY)") {
		t.Errorf("DACL %s does not grant SYSTEM", s)
	}
	for _, who := range []string{";;;WD)", ";;;BU)", ";;;AU)", ";;;IU)"} {
		if strings.Contains(s, who) {
			t.Errorf("DACL %s grants %s", s, who)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), strings.Repeat("a", 64)) {
		t.Fatalf("read back: %q, %v", b, err)
	}
	// Written again (the next start), it is replaced, not appended to.
	if err := writeLocalConn(dir, LocalConn{Token: strings.Repeat("b", 64)}); err != nil {
		t.Fatal(err)
	}
	if tok, replaced, err := localToken(dir); err != nil || replaced || tok != strings.Repeat("b", 64) {
		t.Fatalf("localToken = %q, %v, %v", tok, replaced, err)
	}
	if m, _ := filepath.Glob(path + ".*"); len(m) > 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}
