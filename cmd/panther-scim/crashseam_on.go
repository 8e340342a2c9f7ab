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

// exportCrashHook kills the process when crashEnv is "after-audit-send": after the
// Panther HTTP source acknowledged a batch of audit events, before the export queue
// records it, so that the crash test can see the batch sent again after a restart.
func exportCrashHook() func() {
	if os.Getenv(crashEnv) == "after-audit-send" {
		return func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	}
	return nil
}
