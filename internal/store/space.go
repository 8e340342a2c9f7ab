package store

import (
	"fmt"
	"os"
	"path/filepath"
)

// Space is the room the store takes and has left on its filesystem.
type Space struct {
	// FileBytes is the size of the data file. bbolt grows it in steps and never
	// shrinks it, so it is the most the store has needed so far.
	FileBytes int64
	// FreeBytes is what an unprivileged process may still write on the filesystem
	// holding the file; -1 where the platform cannot tell.
	FreeBytes int64
}

// Space measures the data file and the free space beside it, for the store's gauges:
// every write fails once the file cannot grow, and a backup written next to it
// (BackupFile) needs as much again.
func (b *Bolt) Space() (Space, error) {
	fi, err := os.Stat(b.db.Path())
	if err != nil {
		return Space{}, fmt.Errorf("store space: %w", err)
	}
	free, err := freeBytes(filepath.Dir(b.db.Path()))
	if err != nil {
		return Space{}, fmt.Errorf("store space: %w", err)
	}
	return Space{FileBytes: fi.Size(), FreeBytes: free}, nil
}
