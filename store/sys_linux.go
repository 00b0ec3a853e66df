package store

import (
	"os"
	"syscall"
)

// datasync flushes the file's data and the metadata needed to read it back (its
// size), skipping timestamps: cheaper than fsync for an append-only file.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
