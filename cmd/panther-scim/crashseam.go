package main

// crashEnv names the test-only environment variable that makes the process kill
// itself with SIGKILL at a dangerous point ("after-store-write",
// "after-panther-call" or "after-audit-send"), so that the crash tests can prove recovery on the real
// binary. It is honoured only in a binary built with -tags crashtest (see
// crashseam_on.go); a production build ignores it and does not contain the name.
const crashEnv = "PANTHER_SCIM_TEST_CRASH_AT"
