//go:build unix

package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
)

// Per-phase CPU profiles of a child (-cpuprofile-jwt-phases): the bench
// sends SIGUSR1 when a phase starts and SIGUSR2 when it ends, and the
// child writes one profile per phase, numbered from 1, into dir. A whole
// life profile (-cpuprofile-jwt) cannot tell a phase with an empty cache
// from one with a full cache.

// profilePhases runs in the child until the process ends.
func profilePhases(dir, kind string) {
	c := make(chan os.Signal, 2) // a start and an end: signal.Notify drops what does not fit
	signal.Notify(c, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		n := 0
		var f *os.File
		for s := range c {
			switch {
			case s == syscall.SIGUSR1 && f == nil:
				n++
				var err error
				if f, err = os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.prof", kind, n))); err != nil {
					fmt.Fprintf(os.Stderr, "phase profile: %v\n", err)
					continue
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					fmt.Fprintf(os.Stderr, "phase profile: %v\n", err)
					f.Close()
					f = nil
				}
			case s == syscall.SIGUSR2 && f != nil:
				pprof.StopCPUProfile()
				f.Close()
				f = nil
			}
		}
	}()
}

// phaseStart and phaseEnd mark a phase of c for profilePhases.
func (c *child) phaseStart() error { return c.cmd.Process.Signal(syscall.SIGUSR1) }
func (c *child) phaseEnd() error   { return c.cmd.Process.Signal(syscall.SIGUSR2) }
