//go:build !unix

package main

import "errors"

var errNoPhaseProfiles = errors.New("per-phase profiles need Unix signals")

func profilePhases(string, string) {}

func (c *child) phaseStart() error { return errNoPhaseProfiles }
func (c *child) phaseEnd() error   { return errNoPhaseProfiles }
