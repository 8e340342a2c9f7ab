//go:build linux || darwin || freebsd

package store

import "golang.org/x/sys/unix"

// freeBytes is the space available to an unprivileged process on the filesystem of
// dir (statfs f_bavail: root's reserved blocks do not count, as the server is not root).
func freeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:gosec // block counts fit in int64
}
