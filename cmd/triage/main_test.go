package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("correlation:\n  window: 5m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("correlation:\n  window: soon\n  group_by: []\nkafkaa: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	examples, _ := filepath.Abs("../../deploy/examples")
	withRefs := filepath.Join(dir, "refs.yaml")
	if err := os.WriteFile(withRefs, []byte("cmdb: {file: "+examples+"/cmdb.yaml}\nrules: {files: ["+examples+"/rules/*.yaml]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmdb.yaml"), []byte("cis:\n  - {id: a}\nrelations:\n  - {from: a, to: b, type: depends_on}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("rules:\n  - name: x\n    kind: drop\n    if: alert.labelz.a == \"b\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "window.yaml"), []byte("rules:\n  - name: w\n    kind: maintenance\n    ci: [db-orders, db-nope]\n    schedule: \"0 2 * * SUN\"\n    duration: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unknownCI := filepath.Join(dir, "unknown-ci.yaml")
	if err := os.WriteFile(unknownCI, []byte("cmdb: {file: "+examples+"/cmdb.yaml}\nrules: {files: [window.yaml]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	brokenRefs := filepath.Join(dir, "broken-refs.yaml")
	if err := os.WriteFile(brokenRefs, []byte("cmdb: {file: cmdb.yaml}\nrules: {files: [rules.yaml]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err []string
	}{
		{"valid", []string{"check", good}, 0, []string{good + ": ok"}, nil},
		{"invalid", []string{"check", bad}, 1, nil, []string{bad + ":2: correlation.window:", bad + ":4: unknown key kafkaa"}},
		{"with CMDB and rules", []string{"check", withRefs}, 0, []string{"refs.yaml: ok (cmdb ", "13 CIs, 17 relations; 6 rules)"}, nil},
		{"broken CMDB and rules", []string{"check", brokenRefs}, 1, nil, []string{"cmdb.yaml:4: relations.0.to: \"b\" is not the id of a CI", "rules.yaml:4: "}},
		{"maintenance on an unknown CI", []string{"check", unknownCI}, 1, nil, []string{"window.yaml:4: ", "db-nope"}},
		{"missing file", []string{"check", filepath.Join(dir, "nope.yaml")}, 1, nil, []string{"nope.yaml", "no such file"}},
		{"no file", []string{"check"}, 2, nil, []string{"usage: triage check FILE"}},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`, "Usage:"}},
		{"help", []string{"help"}, 0, []string{"triage serve"}, nil},
		{"bad serve flag", []string{"serve", "--nope"}, 2, nil, []string{"flag provided but not defined"}},
		{"serve with bad config", []string{"serve", "--config", bad}, 1, nil, []string{"unknown key kafkaa"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			for _, w := range tc.out {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout %q lacks %q", stdout.String(), w)
				}
			}
			for _, w := range tc.err {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
		})
	}
}

func TestReplay(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	lines := `# a database outage, its symptom, a heartbeat and an unrelated disk alert
{"labels": {"alertname": "PostgresDown", "instance": "orders-db.prod:5432"}, "severity": "critical", "time": "2026-11-23T10:00:00Z"}
{"labels": {"alertname": "HighErrorRate", "service": "orders"}, "time": "2026-11-23T10:00:40Z"}
{"labels": {"alertname": "Watchdog"}, "time": "2026-11-23T10:00:50Z"}
{"labels": {"alertname": "HighErrorRate", "service": "orders"}, "time": "2026-11-23T10:01:40Z"}
{"version": "4", "status": "firing", "receiver": "triage", "groupKey": "{}", "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull", "instance": "10.0.2.11:9100"}, "startsAt": "2026-11-23T10:00:30Z"}]}
`
	if err := os.WriteFile(events, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"replay", "--cmdb", "../../deploy/examples/cmdb.yaml", "--rules", "../../deploy/examples/rules/*.yaml", events}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var out ReplayOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	s := out.Summary
	if s.Events != 5 || s.Alerts != 3 || s.Incidents != 2 || s.Duplicates != 1 || s.Dropped != 1 || s.Compression < 0.33 || s.Compression > 0.34 {
		t.Fatalf("summary %+v; want 5 events, 3 alerts, 2 incidents, 1 duplicate, 1 dropped, compression 1/3", s)
	}
	db := out.Incidents[0]
	if db.RootCause.CI != "db-orders" || len(db.Alerts) != 2 || db.Alerts[0].Fingerprint == "" || len(db.Explanation) != 2 || db.Priority != "P1" {
		t.Fatalf("first incident %+v", db)
	}
	if !strings.Contains(db.Explanation[1].Reason, "svc-orders depends on the incident's CI db-orders") {
		t.Fatalf("explanation %+v", db.Explanation)
	}

	stdout.Reset()
	if code := run([]string{"replay", "--output", "table", "--cmdb", "../../deploy/examples/cmdb.yaml", events}, &stdout, &stderr); code != 0 {
		t.Fatalf("table: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "db-orders") || !strings.Contains(stdout.String(), "5 events, 4 alerts, 3 incidents") {
		t.Fatalf("table without rules:\n%s", stdout.String())
	}

	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"labels\": {\"a\": \"b\"}, \"time\": \"2026-11-23T10:00:00Z\"}\n{\"labels\": 5}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run([]string{"replay", bad}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "bad.jsonl:2: ") {
		t.Fatalf("bad line: exit %d, stderr %q; want 1 with file:line", code, stderr.String())
	}
}

func TestRulesTestCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"rules", "test", "../../deploy/examples/rules_test.yaml"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if code := run([]string{"rules", "test", "../../rules/ruletest/testdata/failing_test.yaml"}, &stdout, &stderr); code != 1 {
		t.Fatalf("failing tests: exit %d, want 1", code)
	}
	if code := run([]string{"rules"}, &stdout, &stderr); code != 2 {
		t.Fatalf("no subcommand: exit %d, want 2", code)
	}
}
