//go:build linux

package inventory

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

func newPlatformCollector(opts CollectorOptions) Collector {
	root := opts.Root
	deps := linuxDeps{
		fsys: os.DirFS(root),
		statfs: func(mp string) (uint64, error) {
			var st syscall.Statfs_t
			if err := syscall.Statfs(filepath.Join(root, mp), &st); err != nil {
				return 0, err
			}
			return st.Blocks * uint64(st.Bsize), nil
		},
		machine: func() (string, error) {
			var u syscall.Utsname
			if err := syscall.Uname(&u); err != nil {
				return "", err
			}
			b := make([]byte, 0, len(u.Machine))
			for _, c := range u.Machine {
				if c == 0 {
					break
				}
				b = append(b, byte(c))
			}
			return string(b), nil
		},
	}
	if root == "/" {
		if p, err := exec.LookPath("rpm"); err == nil && hasRPMDB() {
			deps.rpm = func(ctx context.Context) ([]byte, error) {
				var stderr bytes.Buffer
				cmd := exec.CommandContext(ctx, p, "-qa", "--queryformat", rpmQueryFormat)
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil && stderr.Len() > 0 {
					return nil, &rpmError{err: err, stderr: clip(stderr.String())}
				}
				return out, err
			}
		}
	}
	return newLinuxCollector(deps, opts.ClassTimeout)
}

// hasRPMDB reports whether an rpm database exists (rpm can be installed as
// a tool on Debian without being the system's package manager).
func hasRPMDB() bool {
	for _, d := range []string{"/var/lib/rpm", "/usr/lib/sysimage/rpm"} {
		if ents, err := os.ReadDir(d); err == nil && len(ents) > 0 {
			return true
		}
	}
	return false
}

type rpmError struct {
	err    error
	stderr string
}

func (e *rpmError) Error() string { return e.err.Error() + ": " + e.stderr }
func (e *rpmError) Unwrap() error { return e.err }
