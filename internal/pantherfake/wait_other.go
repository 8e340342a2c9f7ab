//go:build !linux

package pantherfake

import "time"

// fineSleep sleeps d. Elsewhere than Linux it is a plain timer sleep.
func fineSleep(d time.Duration) { time.Sleep(d) }
