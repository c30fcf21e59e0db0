package daemon

import (
	"errors"
	"testing"
)

func TestDefaultDataDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		goos    string
		uid     int
		env     map[string]string
		home    string
		want    string
		wantErr bool
	}{
		{"windows", "windows", -1, map[string]string{"ProgramData": `D:\PD`}, "", `D:\PD\Kanade`, false},
		{"windows trailing slash", "windows", -1, map[string]string{"ProgramData": `D:\PD\`}, "", `D:\PD\Kanade`, false},
		{"windows allusersprofile", "windows", -1, map[string]string{"ALLUSERSPROFILE": `E:\All`}, "", `E:\All\Kanade`, false},
		{"windows no env", "windows", -1, nil, "", `C:\ProgramData\Kanade`, false},
		{"linux root", "linux", 0, map[string]string{"XDG_STATE_HOME": "/x", "HOME": "/root"}, "", "/var/lib/kanade", false},
		{"linux user xdg", "linux", 1000, map[string]string{"XDG_STATE_HOME": "/x/state", "HOME": "/home/u"}, "", "/x/state/kanade", false},
		{"linux user relative xdg ignored", "linux", 1000, map[string]string{"XDG_STATE_HOME": "state", "HOME": "/home/u"}, "", "/home/u/.local/state/kanade", false},
		{"linux user home", "linux", 1000, map[string]string{"HOME": "/home/u"}, "", "/home/u/.local/state/kanade", false},
		{"linux user home from os", "linux", 1000, nil, "/home/os", "/home/os/.local/state/kanade", false},
		{"linux user no home", "linux", 1000, nil, "", "", true},
		{"darwin root", "darwin", 0, nil, "", "/var/lib/kanade", false},
		{"darwin user", "darwin", 501, map[string]string{"HOME": "/Users/u"}, "", "/Users/u/.local/state/kanade", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sy := &system{
				goos:   tc.goos,
				uid:    tc.uid,
				getenv: func(k string) string { return tc.env[k] },
				homeDir: func() (string, error) {
					if tc.home == "" {
						return "", errors.New("no home")
					}
					return tc.home, nil
				},
			}
			got, err := defaultDataDir(sy)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("defaultDataDir = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
