package runner

import (
	"fmt"
	"os"
	"strings"
)

// utf8BOM starts every staged .ps1 file. Windows PowerShell 5.1 reads a
// BOM-less script in the ANSI code page, so without it non-ASCII text in a
// script would be garbled.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// stageScript writes script to a new file kanade-*.ps1 in dir (os.TempDir()
// when dir is empty), prefixed with a UTF-8 BOM, and returns its path. The
// file is synced and closed; on error nothing is left behind. A script that
// already starts with a BOM does not get a second one.
func stageScript(dir, script string) (path string, err error) {
	body := []byte(script)
	if len(body) < 3 || string(body[:3]) != string(utf8BOM) {
		body = append(append(make([]byte, 0, len(body)+3), utf8BOM...), body...)
	}
	return stageFile(dir, "kanade-*.ps1", body)
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

// stageBatch writes a cmd script to a new file kanade-*.cmd in dir, with
// CRLF line endings (cmd's label and goto handling misreads LF-only files)
// and echo off, as for a script given to cmd /C.
func stageBatch(dir, script string) (string, error) {
	body := strings.ReplaceAll(strings.ReplaceAll(script, "\r\n", "\n"), "\n", "\r\n")
	return stageFile(dir, "kanade-*.cmd", []byte("@echo off\r\n"+body))
}

// maxArgScript is the largest sh script passed on the command line; Linux
// refuses a single argument over 128 KiB (MAX_ARG_STRLEN), so a larger
// script is staged to a file and run as "sh <file>".
const maxArgScript = 64 << 10

// stageFile writes body to a new file named by pattern in dir (os.TempDir()
// when dir is empty) and returns its path. The file is synced and closed;
// on error nothing is left behind.
func stageFile(dir, pattern string, body []byte) (path string, err error) {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrStage, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(body); err != nil {
		return "", fmt.Errorf("%w: %w", ErrStage, err)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrStage, err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrStage, err)
	}
	return f.Name(), nil
}
