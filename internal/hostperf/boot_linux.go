package hostperf

import (
	"os"
	"time"
)

func bootTime() (time.Time, error) {
	p := procSource{fsys: os.DirFS("/")}
	b, err := p.readFile("proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	secs, err := parseBtime(b)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(secs, 0), nil
}
