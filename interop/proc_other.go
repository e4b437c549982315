//go:build !unix

package interop

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

func terminate(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

func kill(cmd *exec.Cmd) { terminate(cmd) }

// lockDir is a no-op here: concurrent installs are only guarded on unix.
func lockDir(string) (func(), error) { return func() {}, nil }
