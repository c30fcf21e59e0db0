package runner

import (
	"errors"
	"testing"
)

// cwdCases is shared with the Windows test that compares expandCwd with
// ExpandEnvironmentStrings. env: AA=x, Bb=y, EMPTY=, PCT=%AA%.
var cwdCases = []struct{ raw, want string }{
	{`C:\work`, `C:\work`},
	{`%AA%`, `x`},
	{`%aa%\%BB%`, `x\y`},
	{`C:\%AA%\sub`, `C:\x\sub`},
	{`%NOPE%`, `%NOPE%`},
	{`%NOPE%AA%`, `%NOPE%AA%`},
	{`%NOPE%BB%AA%`, `%NOPE%BBx`},
	{`%AA%%BB%`, `xy`},
	{`a%b`, `a%b`},
	{`100%`, `100%`},
	{`%%`, `%%`},
	{`%%AA%%`, `%%AA%%`},
	{`%AA`, `%AA`},
	{`% %`, `% %`},
	{`%EMPTY%z`, `z`},
	{`%PCT%`, `%AA%`}, // expanded once, not again
	{`%=C:%`, `%=C:%`},
}

func TestExpandCwd(t *testing.T) {
	env := []string{"=C:=C:\\x", "AA=x", "Bb=y", "EMPTY=", "PCT=%AA%", "aa=second"}
	profile := func() (string, error) { return `C:\Users\op`, nil }
	for _, tc := range cwdCases {
		if got := expandCwd(tc.raw, env, profile); got != tc.want {
			t.Errorf("expandCwd(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
	for _, tc := range []struct {
		raw, profile, want string
		err                bool
	}{
		{`~`, `C:\Users\op`, `C:\Users\op`, false},
		{`~\src\x`, `C:\Users\op`, `C:\Users\op\src\x`, false},
		{`~/src/x`, `C:\Users\op`, `C:\Users\op\src/x`, false},
		{`~\sub`, `C:\Users\op\`, `C:\Users\op\sub`, false},
		{`~\%AA%`, `C:\Users\op`, `C:\Users\op\x`, false},
		{`~op\x`, `C:\Users\op`, `~op\x`, false},
		{`C:\a~\b`, `C:\Users\op`, `C:\a~\b`, false},
		{`~\x`, ``, `~\x`, true}, // no profile: left as it is
	} {
		p := func() (string, error) {
			if tc.err {
				return "", errors.New("no profile")
			}
			return tc.profile, nil
		}
		if got := expandCwd(tc.raw, env, p); got != tc.want {
			t.Errorf("expandCwd(%q) with profile %q = %q, want %q", tc.raw, tc.profile, got, tc.want)
		}
	}
}
