//go:build !linux && !windows

package netwatch

import "context"

func run(context.Context, func(), Options) error { return ErrUnsupported }
