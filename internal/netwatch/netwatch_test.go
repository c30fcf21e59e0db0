package netwatch

import (
	"context"
	"slices"
	"testing"
)

func TestDiff(t *testing.T) {
	for _, c := range []struct {
		a, b, gone, added []string
	}{
		{nil, nil, nil, nil},
		{[]string{"a", "b"}, []string{"a", "b"}, nil, nil},
		{[]string{"a", "b"}, []string{"b", "c"}, []string{"a"}, []string{"c"}},
		{nil, []string{"a"}, nil, []string{"a"}},
		{[]string{"a", "c"}, nil, []string{"a", "c"}, nil},
		{[]string{"a", "c", "e"}, []string{"b", "c", "d"}, []string{"a", "e"}, []string{"b", "d"}},
	} {
		gone, added := diff(newState(c.a), newState(c.b))
		if !slices.Equal(gone, c.gone) || !slices.Equal(added, c.added) {
			t.Errorf("diff(%q, %q) = %q, %q; want %q, %q", c.a, c.b, gone, added, c.gone, c.added)
		}
	}
	if s := newState([]string{"b", "a", "b"}); !slices.Equal(s, state{"a", "b"}) {
		t.Errorf("newState: %q", s)
	}
}

func TestNilCallback(t *testing.T) {
	if err := Run(context.Background(), nil, Options{}); err == nil {
		t.Fatal("Run with a nil callback: no error")
	}
}
