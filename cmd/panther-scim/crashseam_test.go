//go:build !crashtest

package main

import "testing"

// A build without the crashtest tag ignores the crash seam's variable.
func TestCrashSeamOffInProductionBuild(t *testing.T) {
	for _, at := range []string{"after-store-write", "after-panther-call", "after-audit-send"} {
		t.Setenv(crashEnv, at)
		if h := crashHooks(); h.AfterStoreWrite != nil || h.AfterPantherCall != nil || exportCrashHook() != nil {
			t.Errorf("%s=%s armed a crash hook in a production build", crashEnv, at)
		}
	}
}
