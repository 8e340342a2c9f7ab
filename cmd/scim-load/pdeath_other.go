//go:build !linux

package main

import "os/exec"

// setParentDeathSignal does nothing here: the server still stops when its stdin
// closes, which it does when scim-load exits.
func setParentDeathSignal(*exec.Cmd) {}
