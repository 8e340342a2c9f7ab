package pantherfake

import (
	"syscall"
	"time"
)

// fineSleep sleeps d on the calling goroutine's thread, with nanosleep: the kernel
// wakes it within about 0.1 ms, where the runtime's timers (epoll_wait, in
// milliseconds) would wake it up to 1 ms late. The runtime hands the thread's P to
// other goroutines meanwhile, as for any blocking system call.
func fineSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil) // EINTR: the caller loops until its deadline
}
