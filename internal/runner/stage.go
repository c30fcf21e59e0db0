package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/internal/privdir"
	"github.com/kanade/kanade-agent/wire"
)

// utf8BOM starts every staged .ps1 file. Windows PowerShell 5.1 reads a
// BOM-less script in the ANSI code page, so without it non-ASCII text in a
// script would be garbled.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Names of the files staged in a run's folder.
const (
	stagedPS1      = "script.ps1" // the PowerShell script, verbatim after a BOM
	stagedLauncher = "launch.ps1" // what PowerShell is given: see launcher
	stagedBatch    = "script.cmd"
	stagedSh       = "script.sh"
)

// stage is one run's private staging folder, a fresh directory (see
// privdir.MkdirFresh) in Spec.StageDir, and the files staged in it.
type stage struct {
	dir   string
	files []string
	// run is the file the shell is given.
	run string
	// locks are open handles on the staged files that, on Windows, deny
	// writing, renaming and deleting them while the script runs.
	locks []io.Closer
}

// newStage creates a run's staging folder in stageDir. A non-empty
// stageDir is first made private with privdir.Ensure (created if missing;
// refused if another account may have made or changed it); an empty one
// means os.TempDir(), used as it is.
func newStage(stageDir string) (*stage, error) {
	base := stageDir
	if base == "" {
		base = os.TempDir()
	} else if _, err := privdir.Ensure(stageDir); err != nil {
		return nil, fmt.Errorf("%w: staging directory: %w", ErrStage, err)
	}
	dir, err := privdir.MkdirFresh(base, "run-")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStage, err)
	}
	return &stage{dir: dir}, nil
}

// add writes body to a new file name in the stage folder (which must not
// exist; links are not followed), syncs and closes it, then on Windows
// keeps it open denying writes and deletion. It returns the file's path.
func (st *stage) add(name string, body []byte) (string, error) {
	p := filepath.Join(st.dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrStage, err)
	}
	st.files = append(st.files, p)
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrStage, err)
	}
	lock, err := lockFile(p)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrStage, err)
	}
	if lock != nil {
		st.locks = append(st.locks, lock)
	}
	return p, nil
}

// remove closes the locks and removes the staged files and the folder,
// retrying briefly: on Windows a process of the just-killed tree may hold
// a file for a moment.
func (st *stage) remove() {
	for _, l := range st.locks {
		l.Close()
	}
	st.locks = nil
	deadline := time.Now().Add(2 * time.Second)
	for _, p := range append(st.files, st.dir) {
		for {
			err := os.Remove(p)
			if err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// stageFor stages what s needs, if anything: nil when the script runs from
// the command line. On error nothing is left behind.
func stageFor(s *Spec) (st *stage, err error) {
	ps := s.Shell == wire.ShellPowerShell || s.Shell == wire.ShellPwsh
	batch := s.Shell == wire.ShellCmd && needsBatch(s.Script)
	large := s.Shell == wire.ShellSh && len(s.Script) > maxArgScript
	if !ps && !batch && !large {
		return nil, nil
	}
	if st, err = newStage(s.StageDir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.remove()
			st = nil
		}
	}()
	switch {
	case ps:
		var script string
		if script, err = st.add(stagedPS1, withBOM(s.Script)); err == nil {
			st.run, err = st.add(stagedLauncher, withBOM(launcher(script)))
		}
	case batch:
		st.run, err = st.add(stagedBatch, []byte(batchBody(s.Script)))
	default:
		st.run, err = st.add(stagedSh, []byte(s.Script))
	}
	return st, err
}

// withBOM returns script prefixed with a UTF-8 BOM, unless it already
// starts with one.
func withBOM(script string) []byte {
	body := []byte(script)
	if len(body) >= 3 && string(body[:3]) == string(utf8BOM) {
		return body
	}
	return append(append(make([]byte, 0, len(body)+3), utf8BOM...), body...)
}

// launcher returns the PowerShell launcher for the staged script at path:
// it makes PowerShell write UTF-8 to the output pipes (by default it uses
// the OEM code page, so non-ASCII output of a CP932 machine arrives
// garbled), then runs the script with the call operator, which keeps a
// [CmdletBinding()] / param() header at the top of the script's own file
// where PowerShell requires it, then exits with the script's exit code:
// the code of its exit statement, else that of the last native program it
// ran, else 0. An error that terminates the script ends PowerShell with
// exit code 1, as -File would.
func launcher(path string) string {
	return "[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false; " +
		"$OutputEncoding = [Console]::OutputEncoding; " +
		"$global:LASTEXITCODE = 0; & " + psQuote(path) + "; exit $LASTEXITCODE\r\n"
}

// psQuote returns s as a PowerShell single-quoted string. PowerShell takes
// the typographic quotes U+2018..U+201B as single quotes too; each quote of
// any kind is escaped by doubling it.
func psQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'', '\u2018', '\u2019', '\u201A', '\u201B':
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}

// maxCmdLine is the longest cmd script run as cmd /S /C "<script>":
// cmd.exe refuses a command line over 8191 characters.
const maxCmdLine = 8000

// needsBatch reports whether a cmd script must be staged as a batch file:
// cmd /C stops at the first line break, so it would silently run only the
// first line of a multi-line script, and it cannot take a script longer
// than its command-line limit.
func needsBatch(script string) bool {
	return strings.ContainsAny(script, "\r\n") || len(script) > maxCmdLine
}

// batchBody returns a cmd script as a batch file: CRLF line endings (cmd's
// label and goto handling misreads LF-only files) and echo off, as for a
// script given to cmd /C.
func batchBody(script string) string {
	body := strings.ReplaceAll(strings.ReplaceAll(script, "\r\n", "\n"), "\n", "\r\n")
	return "@echo off\r\n" + body
}

// maxArgScript is the largest sh script passed on the command line; Linux
// refuses a single argument over 128 KiB (MAX_ARG_STRLEN), so a larger
// script is staged to a file and run as "sh <file>".
const maxArgScript = 64 << 10
