//go:build !windows

package ledger

import "os"

// syncDir fsyncs the directory dir, so that a rename or a file creation in it
// is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// renameDurable renames from to to, replacing to. On Unix rename(2) is atomic;
// the caller makes it durable with syncDir.
func renameDurable(from, to string) error {
	return os.Rename(from, to)
}
