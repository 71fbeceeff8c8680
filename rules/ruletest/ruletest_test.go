package ruletest

import (
	"bytes"
	"strings"
	"testing"
)

func TestExamplesPass(t *testing.T) {
	var out bytes.Buffer
	res, err := Run([]string{"../../deploy/examples/rules_test.yaml"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || len(res[0].Failures) != 0 || res[0].Passed < 4 {
		t.Fatalf("results %+v\n%s", res, out.String())
	}
	if !strings.Contains(out.String(), "SUCCESS: 4 tests") {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestFailuresAreReadable(t *testing.T) {
	var out bytes.Buffer
	res, err := Run([]string{"testdata/failing_test.yaml"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Passed != 1 || len(res[0].Failures) != 2 {
		t.Fatalf("want 1 passed and 2 failed, got %+v\n%s", res, out.String())
	}
	for _, want := range []string{
		`FAILED: 2 of 3 tests`,
		`incident 1 (INC-1): root_cause: want "svc-orders", got "db-orders"`,
		`incident 1 (INC-1): alerts: want 1, got 2`,
		`dropped: want 2 events, got 1`,
		`dropped: no event {alertname="HostDown"} dropped by rule "drop-watchdog"`,
		`INC-1 open P1 root_cause=db-orders`, // what the engine made
		`svc-orders depends on the incident's CI db-orders (1 hop)`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBadEventIsAFileLineError(t *testing.T) {
	var out bytes.Buffer
	_, err := Run([]string{"testdata/broken_test.yaml"}, &out)
	if err == nil || !strings.Contains(err.Error(), "testdata/broken_test.yaml:6: tests.0.events.1: invalid event: labels: at least one label is required") {
		t.Fatalf("err = %v", err)
	}
}

func TestBrokenRuleFileFailsWithItsLine(t *testing.T) {
	_, err := RunFile("testdata/badrule_test.yaml")
	if err == nil || !strings.Contains(err.Error(), "testdata/badrule.yaml:4: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestBadCorrelationOverridesPointAtTheFile(t *testing.T) {
	var out bytes.Buffer
	_, err := Run([]string{"testdata/badcorrelation_test.yaml", "../../deploy/examples/rules_test.yaml"}, &out)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"testdata/badcorrelation_test.yaml:2: correlation.max_hops: must be between 0 and 10"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !strings.Contains(out.String(), "SUCCESS: 4 tests") {
		t.Errorf("the second file did not run after the first failed:\n%s", out.String())
	}
}
