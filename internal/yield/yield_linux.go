package yield

import "syscall"

// osYield ends the calling thread's time slice (sched_yield(2)): a thread waiting for
// this core runs first, and when none is, the caller goes on at once. It is a Syscall,
// not a RawSyscall, so that the runtime may hand the caller's P to another thread while
// this one waits for a core.
func osYield() error {
	if _, _, errno := syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0); errno != 0 {
		return errno
	}
	return nil
}
