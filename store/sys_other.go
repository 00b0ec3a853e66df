//go:build !unix

package store

import "os"

// Elsewhere than Unix, no advisory lock and no directory sync: the embedded store is
// for development there; deployments run on Linux.
func lockDir(string) (*os.File, error) { return nil, nil }

func syncDir(string) error { return nil }
