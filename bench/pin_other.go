//go:build !linux

package main

import (
	"errors"
	"os/exec"
	"runtime"
)

var errNoAffinity = errors.New("CPU affinity is only supported on Linux")

func allowedCPUs() ([]int, error) {
	cpus := make([]int, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = i
	}
	return cpus, nil
}

func pinSelf([]int) error { return errNoAffinity }

func startPinned(cmd *exec.Cmd, _ []int) error { return errNoAffinity }
