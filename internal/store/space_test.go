//go:build linux

package store

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// TestSpace: the file size is the data file's, it grows with the store, and the free
// space is that of the file's filesystem.
func TestSpace(t *testing.T) {
	s := openTemp(t, Options{NoSync: true})
	before, err := s.Space()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if before.FileBytes != fi.Size() || before.FileBytes == 0 {
		t.Errorf("FileBytes %d, the file has %d", before.FileBytes, fi.Size())
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(s.Path()), &fs); err != nil {
		t.Fatal(err)
	}
	if size := int64(fs.Blocks) * fs.Bsize; before.FreeBytes <= 0 || before.FreeBytes > size {
		t.Errorf("FreeBytes %d, want in (0, %d] (the filesystem's size)", before.FreeBytes, size)
	}

	err = s.Update(bg, func(tx provision.Tx) error {
		for n := range 20000 {
			if err := tx.PutUser(testUser(n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.Space()
	if err != nil {
		t.Fatal(err)
	}
	if after.FileBytes <= before.FileBytes {
		t.Errorf("FileBytes %d after 20,000 users, %d before", after.FileBytes, before.FileBytes)
	}
}
