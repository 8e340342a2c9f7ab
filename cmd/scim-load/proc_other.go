//go:build !linux

package main

import "os/exec"

// setParentDeathSignal does nothing here: the server still stops when its stdin
// closes, which it does when scim-load exits.
func setParentDeathSignal(*exec.Cmd) {}

// dropFromPageCache does nothing here: --server-cgroup is for Linux.
func dropFromPageCache(string) error { return nil }
