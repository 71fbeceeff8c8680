package main

import (
	"fmt"
	"io"

	"github.com/triage-dev/triage/rules/ruletest"
)

func rulesCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: triage rules test FILE...")
		return 2
	}
	results, err := ruletest.Run(args[1:], stdout)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, r := range results {
		if len(r.Failures) > 0 {
			return 1
		}
	}
	return 0
}
