package main

import (
	"fmt"
	"io"
)

func rulesCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: triage rules test FILE...")
		return 2
	}
	fmt.Fprintln(stderr, "triage rules test: not built yet")
	return 1
}
