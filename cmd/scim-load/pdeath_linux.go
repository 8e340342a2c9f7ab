package main

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the server if scim-load dies first.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
