// Package testenv lets tests that need an outside service (a real
// Alertmanager binary, a Kafka broker, a ClickHouse server) find it through
// an environment variable, and decide what happens when it is missing.
//
// Locally a missing service skips the test with a message saying which
// variable to set and how. CI sets TRIAGE_REQUIRE_SERVICES=1 (see .ci/run),
// and then a missing service fails the test instead, so that CI can never
// pass by silently skipping the integration tests.
package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// RequireEnv is the environment variable that turns a missing service from
// a skip into a failure when set to "1".
const RequireEnv = "TRIAGE_REQUIRE_SERVICES"

// Required reports whether missing services fail tests rather than skip them.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// RequireService returns the value of the environment variable env, which
// names how to reach a service. When env is not set the test is skipped or,
// with TRIAGE_REQUIRE_SERVICES=1, fails. what is "<service>: <how to
// provide it>", for the message, e.g. "a Kafka broker: run deploy/dev/kafka.sh
// start and eval its env output".
func RequireService(t testing.TB, env, what string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		missing(t, fmt.Sprintf("%s is not set", env), env, what)
	}
	return v
}

// RequireFile is RequireService for a variable naming an executable file,
// such as ALERTMANAGER_BIN: it also fails or skips the test, the same way,
// when the file does not exist or is not executable.
func RequireFile(t testing.TB, env, what string) string {
	t.Helper()
	p := RequireService(t, env, what)
	if p == "" { // only when t's Skipf/Fatalf returned (a fake testing.TB)
		return ""
	}
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		missing(t, fmt.Sprintf("%s=%s: %v", env, p, err), env, what)
	case fi.IsDir():
		missing(t, fmt.Sprintf("%s=%s is a directory, not an executable file", env, p), env, what)
	case fi.Mode().Perm()&0o111 == 0:
		missing(t, fmt.Sprintf("%s=%s is not executable (mode %v)", env, p, fi.Mode().Perm()), env, what)
	default:
		return p
	}
	return ""
}

// missing skips or fails t: problem says what is wrong with env; what is
// "<service>: <how to provide it>".
func missing(t testing.TB, problem, env, what string) {
	t.Helper()
	name, how, ok := strings.Cut(what, ": ")
	if ok {
		how = ": " + how
	}
	if Required() {
		t.Fatalf("%s is required (%s=1) but %s%s", name, RequireEnv, problem, how)
		return
	}
	t.Skipf("skipping: needs %s but %s%s (with %s=1 this fails instead of skipping)",
		name, problem, how, RequireEnv)
}
