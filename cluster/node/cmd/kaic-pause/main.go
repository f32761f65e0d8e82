// Command kaic-pause is the pod sandbox's only process: it holds the pod's
// namespaces open, reaps orphans when the pod shares its PID namespace, and
// exits cleanly on SIGINT or SIGTERM so a pod stops without waiting for SIGKILL.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		// Reap every exited child; -1 waits for any, WNOHANG stops when none is left.
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
