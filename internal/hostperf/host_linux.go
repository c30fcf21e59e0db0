package hostperf

import "os"

func newSystemSource() source {
	return &procSource{fsys: os.DirFS("/")}
}
