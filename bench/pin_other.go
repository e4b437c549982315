//go:build !linux

package main

import (
	"errors"
	"os/exec"
)

var errNoAffinity = errors.New("CPU affinity is only supported on Linux")

// allowedCPUs fails here, so that the bench runs unpinned (planCPUs).
func allowedCPUs() ([]int, error) { return nil, errNoAffinity }

func pinSelf([]int) error { return errNoAffinity }

func startPinned(cmd *exec.Cmd, _ []int) error { return errNoAffinity }
