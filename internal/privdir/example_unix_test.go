//go:build unix

package privdir_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kanade/kanade-agent/internal/privdir"
)

func ExampleEnsure() {
	base, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(base)
	dir := filepath.Join(base, "kanade")

	o, err := privdir.Ensure(dir) // at first start
	fmt.Println(o, err)
	o, err = privdir.Ensure(dir) // at every later start
	fmt.Println(o, err)

	os.Chmod(dir, 0o777) // someone opened it up
	_, err = privdir.Ensure(dir)
	fmt.Println(err != nil)
	// Output:
	// created <nil>
	// existed <nil>
	// true
}

func ExampleMkdirFresh() {
	base, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(base)

	run, err := privdir.MkdirFresh(base, "run-") // one per script run
	if err != nil {
		fmt.Println(err)
		return
	}
	fi, _ := os.Stat(run)
	fmt.Println(len(filepath.Base(run)), fi.Mode().Perm())
	// Output:
	// 36 -rwx------
}
