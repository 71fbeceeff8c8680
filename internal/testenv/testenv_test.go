package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTB records Skipf and Fatalf instead of stopping the goroutine. Only
// the methods testenv calls are implemented; the embedded nil TB panics on
// any other.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skipf(format string, args ...any)  { f.skipped = fmt.Sprintf(format, args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

const what = "the thing: build it with make thing"

func TestRequireService(t *testing.T) {
	const env = "TRIAGE_TESTENV_TEST_SERVICE"
	for _, tc := range []struct {
		name, value, require string
		wantSkip, wantFail   []string
	}{
		{name: "set", value: "127.0.0.1:1234"},
		{name: "set, required", value: "127.0.0.1:1234", require: "1"},
		{name: "unset skips", wantSkip: []string{"needs the thing but " + env + " is not set: build it with make thing", RequireEnv + "=1"}},
		{name: "unset, require=0 skips", require: "0", wantSkip: []string{env + " is not set"}},
		{name: "unset, required fails", require: "1",
			wantFail: []string{"the thing is required (" + RequireEnv + "=1) but " + env + " is not set: build it with make thing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(env, tc.value)
			t.Setenv(RequireEnv, tc.require)
			f := &fakeTB{}
			got := RequireService(f, env, what)
			if got != tc.value {
				t.Errorf("RequireService = %q, want %q", got, tc.value)
			}
			check(t, f, tc.wantSkip, tc.wantFail)
		})
	}
}

func TestRequireFile(t *testing.T) {
	const env = "TRIAGE_TESTENV_TEST_BIN"
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, value, require string
		want                 string
		wantSkip, wantFail   []string
	}{
		{name: "executable", value: exe, want: exe},
		{name: "executable, required", value: exe, require: "1", want: exe},
		{name: "unset skips", wantSkip: []string{env + " is not set: build it with make thing"}},
		{name: "missing file skips", value: filepath.Join(dir, "nope"),
			wantSkip: []string{env + "=" + filepath.Join(dir, "nope"), "no such file"}},
		{name: "missing file, required fails", value: filepath.Join(dir, "nope"), require: "1",
			wantFail: []string{"the thing is required", "no such file", "make thing"}},
		{name: "not executable skips", value: plain, wantSkip: []string{"is not executable"}},
		{name: "not executable, required fails", value: plain, require: "1", wantFail: []string{"is not executable"}},
		{name: "directory, required fails", value: dir, require: "1", wantFail: []string{"is a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(env, tc.value)
			t.Setenv(RequireEnv, tc.require)
			f := &fakeTB{}
			if got := RequireFile(f, env, what); got != tc.want {
				t.Errorf("RequireFile = %q, want %q", got, tc.want)
			}
			check(t, f, tc.wantSkip, tc.wantFail)
		})
	}
}

// TestSkipsForReal checks the path a real test takes without the service:
// it is skipped, not failed (run only when the service is not required, as
// otherwise it would fail by design).
func TestSkipsForReal(t *testing.T) {
	if Required() {
		t.Skip(RequireEnv + "=1: the missing-service path fails by design")
	}
	t.Setenv("TRIAGE_TESTENV_TEST_UNSET", "")
	var reached bool
	t.Run("inner", func(t *testing.T) {
		RequireService(t, "TRIAGE_TESTENV_TEST_UNSET", what)
		reached = true
	})
	if reached {
		t.Error("RequireService returned for an unset variable instead of skipping")
	}
}

func check(t *testing.T, f *fakeTB, wantSkip, wantFail []string) {
	t.Helper()
	switch {
	case wantSkip == nil && f.skipped != "":
		t.Errorf("skipped unexpectedly: %s", f.skipped)
	case wantFail == nil && f.failed != "":
		t.Errorf("failed unexpectedly: %s", f.failed)
	case wantSkip != nil && f.skipped == "":
		t.Errorf("not skipped (failed: %q)", f.failed)
	case wantFail != nil && f.failed == "":
		t.Errorf("did not fail (skipped: %q)", f.skipped)
	}
	for _, w := range wantSkip {
		if !strings.Contains(f.skipped, w) {
			t.Errorf("skip message %q does not contain %q", f.skipped, w)
		}
	}
	for _, w := range wantFail {
		if !strings.Contains(f.failed, w) {
			t.Errorf("failure message %q does not contain %q", f.failed, w)
		}
	}
}

func TestMessageWithoutHow(t *testing.T) {
	const env = "TRIAGE_TESTENV_TEST_PLAIN"
	t.Setenv(env, "")
	t.Setenv(RequireEnv, "1")
	f := &fakeTB{}
	RequireService(f, env, "a plain service")
	if want := "a plain service is required (" + RequireEnv + "=1) but " + env + " is not set"; f.failed != want {
		t.Errorf("message %q, want %q", f.failed, want)
	}
}
