package daemon

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// tcpListeners returns the local addresses (hex, as in /proc/net/tcp) of
// the listening TCP sockets that process pid holds.
func tcpListeners(pid int) ([]string, error) {
	listening := map[string]string{} // socket inode -> local address
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			// sl local_address rem_address st ... inode is field 9.
			if len(fs) > 9 && fs[3] == "0A" {
				listening[fs[9]] = fs[1]
			}
		}
		fh.Close()
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if addr, ok := listening[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")]; ok {
			out = append(out, addr)
		}
	}
	return out, nil
}
