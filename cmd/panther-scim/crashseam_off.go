//go:build !crashtest

package main

import "github.com/panther-scim/panther-scim/internal/provision"

// crashHooks is empty in a production build: the crash seam exists only with -tags
// crashtest, so no environment variable can make a deployed bridge kill itself.
func crashHooks() provision.Hooks { return provision.Hooks{} }

// exportCrashHook is nil in a production build (see crashHooks).
func exportCrashHook() func() { return nil }
