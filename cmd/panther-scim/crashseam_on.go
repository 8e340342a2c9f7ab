//go:build crashtest

package main

import (
	"os"
	"syscall"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// crashHooks arms the crash seam named by crashEnv. Only crash-test builds have it.
func crashHooks() provision.Hooks {
	kill := func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	switch os.Getenv(crashEnv) {
	case "after-store-write":
		return provision.Hooks{AfterStoreWrite: kill}
	case "after-panther-call":
		return provision.Hooks{AfterPantherCall: kill}
	}
	return provision.Hooks{}
}
