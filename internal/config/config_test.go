package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9400" || c.DataDir != filepath.Join("testdata", "state") {
		t.Fatalf("listen %q data_dir %q (relative paths resolve against the file's dir)", c.Listen, c.DataDir)
	}
	k := c.Correlation
	if k.Window.D() != 15*time.Minute || k.ResolveAfter.D() != 0 || k.ReopenWindow.D() != time.Hour ||
		strings.Join(k.GroupBy, ",") != "alertname,cluster,service" || len(k.CILabels) != 3 {
		t.Fatalf("correlation %+v", k)
	}
	if c.Store.EventRetention.D() != 24*time.Hour || c.Store.MaxBatch != 5000 || c.HTTP.MaxBodyBytes != 1<<20 ||
		c.Store.CheckpointInterval.D() != 250*time.Millisecond {
		t.Fatalf("store %+v http %+v", c.Store, c.HTTP)
	}
	tok, err := c.Auth.ResolveToken(func(string) string { return "from-env" })
	if err != nil || tok != "s3cr3t" {
		t.Fatalf("token %q %v: token_file wins over the environment", tok, err)
	}
}

func TestDefaultsOverlay(t *testing.T) {
	c, err := Parse("t.yaml", []byte("correlation:\n  window: 3m\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Correlation.Window.D() != 3*time.Minute || c.Correlation.ResolveAfter != d.Correlation.ResolveAfter ||
		strings.Join(c.Correlation.GroupBy, ",") != "alertname,service" || c.Listen != d.Listen {
		t.Fatalf("unset keys must keep their defaults: %+v", c.Correlation)
	}
	for _, empty := range []string{"", "# nothing set yet\n", "---\n"} {
		if _, err := Parse("empty.yaml", []byte(empty)); err != nil {
			t.Fatalf("%q: an empty file is the defaults: %v", empty, err)
		}
	}
	if c, err := Parse("utf8.yaml", []byte("correlation:\n  group_by: [alertname, service.name]\n")); err != nil || c.Correlation.GroupBy[1] != "service.name" {
		t.Fatalf("UTF-8 label names in group_by: %v", err)
	}
}

func TestErrorsPointAtFileLine(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top-level key", "listen: 127.0.0.1:1\nlisten_addr: x\n", []string{"t.yaml:2: unknown key listen_addr"}},
		{"unknown nested key", "correlation:\n  window: 1m\n  windw: 2m\n", []string{"t.yaml:3: unknown key windw"}},
		{"bad duration", "correlation:\n  resolve_after: 5 minutes\n", []string{"t.yaml:2:", `"5 minutes" is not a duration`}},
		{"wrong type", "store:\n  max_batch: many\n", []string{"t.yaml:2:", "max_batch"}},
		{"negative duration", "correlation:\n  reopen_window: -1m\n", []string{"t.yaml:2: correlation.reopen_window: must not be negative"}},
		{"bad label in list", "correlation:\n  group_by:\n    - alertname\n    - \"\"\n", []string{"t.yaml:4: correlation.group_by.1:", `""`}},
		{"second document", "listen: 127.0.0.1:1\n---\nlisten: 0.0.0.0:1\n", []string{"t.yaml:2: a second YAML document"}},
		{"bad listen", "listen: nocolon\n", []string{"t.yaml:1: listen:"}},
		{"bad log level", "log:\n  level: loud\n", []string{"t.yaml:2: log.level:"}},
		{"syntax error", "correlation: [\n", []string{"t.yaml:"}},
		{"token and token_file", "auth:\n  token: a\n  token_file: /etc/x\n", []string{"t.yaml:3: auth.token_file: set either"}},
		{"missing token file", "auth:\n  token_file: /nonexistent/token\n", []string{"t.yaml:2: auth.token_file:", "no such file"}},
		{"checkpoint interval too short", "store:\n  checkpoint_interval: 1ms\n", []string{"t.yaml:2: store.checkpoint_interval: must be between"}},
		{"clickhouse bad addr", "clickhouse:\n  addr: localhost\n", []string{"t.yaml:2: clickhouse.addr: \"localhost\" is not host:port"}},
		{"sla unknown calendar", "sla:\n  policies:\n    - name: p1\n      priorities: [P1]\n      calendar: nope\n      acknowledge: 15m\n", []string{"t.yaml:5: sla.policies.0.calendar:"}},
		{"sla bad zone", "sla:\n  calendars:\n    - name: eu\n      time_zone: Europe/Berln\n      days: [mon]\n      hours: [\"09:00-17:00\"]\n", []string{"t.yaml:4: sla.calendars.0.time_zone:", "Europe/Berln"}},
		{"priority matrix incomplete", "correlation:\n  priority:\n    matrix:\n      high: {high: P1}\n", []string{"t.yaml:4: correlation.priority.matrix.high: impact high × urgency medium", "t.yaml:3: correlation.priority.matrix.low: impact low × urgency low"}},
		{"priority tier level", "correlation:\n  priority:\n    tiers: {\"1\": urgent}\n", []string{"correlation.priority.tiers.1: \"urgent\" is not low, medium or high"}},
		{"priority urgency typo", "correlation:\n  priority:\n    urgency: {critcal: high}\n", []string{"correlation.priority.urgency.critcal: \"critcal\" is not a severity"}},
		{"priority not monotone", "correlation:\n  priority:\n    matrix:\n      high: {high: P1, medium: P2, low: P3}\n      medium: {high: P2, medium: P3, low: P4}\n      low: {high: P3, medium: P2, low: P5}\n", []string{"correlation.priority.matrix.low: not monotone"}},
		{"clickhouse database name", "clickhouse:\n  addr: 127.0.0.1:9000\n  database: triage-prod\n", []string{"t.yaml:3: clickhouse.database: \"triage-prod\" is not a database name"}},
		{"problems threshold", "problems:\n  threshold: 1\n", []string{"t.yaml:2: problems.threshold: must be at least 2"}},
		{"xla satisfaction", "xla:\n  services:\n    orders: {min_satisfaction: 7}\n", []string{"t.yaml:3: xla.services.orders.min_satisfaction:"}},
		{"jira without project or token", "jira:\n  url: https://x.atlassian.net\n  user: a@b.c\n", []string{"t.yaml:1: jira.token_file: set token_file or token_env", "t.yaml:1: jira.project: must name"}},
		{"jira bad condition", "jira:\n  url: https://jira.example\n  token_env: T\n  project: OPS\n  when: 'incident.priority =='\n", []string{"t.yaml:5: jira.when: condition"}},
		{"jira summary without key", "jira:\n  url: https://jira.example\n  token_env: T\n  project: OPS\n  summary: '{{.Incident.Title}}'\n", []string{"t.yaml:5: jira.summary: must contain the incident key"}},
		{"jira template error", "jira:\n  url: https://jira.example\n  token_env: T\n  project: OPS\n  description: '{{.Incident.Nope}}'\n", []string{"t.yaml:5: jira.description: description template:", "Nope"}},
		{"jira label with space", "jira:\n  url: https://jira.example\n  token_env: T\n  project: OPS\n  labels: [a b]\n", []string{"t.yaml:5: jira.labels:", "cannot be empty or contain spaces"}},
		{"jira route without condition", "jira:\n  url: https://jira.example\n  token_env: T\n  project: OPS\n  routes:\n    - {project: DBA}\n", []string{"t.yaml:6: jira.routes.0.when: must be set"}},
		{"webhook without secret", "webhooks:\n  - name: chat\n    url: http://chat.example/hook\n", []string{"t.yaml:2: webhooks.0.secret_file: set secret_file or secret_env"}},
		{"webhook bad url", "webhooks:\n  - name: chat\n    url: chat\n    secret_env: S\n", []string{"t.yaml:2: webhooks.0: webhook chat: url \"chat\" is not an http(s) URL"}},
		{"kafka broker without port", "kafka:\n  brokers: [localhost]\n", []string{"t.yaml:2: kafka.brokers.0:"}},
		{"max hops out of range", "correlation:\n  window: 1m\n  max_hops: 11\n", []string{"t.yaml:3: correlation.max_hops: must be between 0 and 10"}},
		{"unknown relation", "correlation:\n  relations: [depends_on, owns]\n", []string{"t.yaml:2: correlation.relations.1: \"owns\" is not"}},
		{"flapping needs two changes", "correlation:\n  flapping:\n    changes: 1\n", []string{"t.yaml:3: correlation.flapping.changes: must be 0 (off) or at least 2"}},
		{"log mask matching nothing", "logs:\n  masks:\n    - {name: ID, regex: '[0-9]*'}\n", []string{"t.yaml:3: logs.masks.0.regex: \"[0-9]*\" matches the empty string"}},
		{"log spike factor NaN", "logs:\n  spike: {factor: .nan}\n", []string{"t.yaml:2: logs.spike.factor: must not be negative"}},
		{"min alerts zero", "correlation:\n  min_alerts: 0\n", []string{"t.yaml:2: correlation.min_alerts: must be at least 1"}},
		{"two problems", "listen: x\nstore:\n  max_batch: 0\n", []string{"t.yaml:1: listen:", "t.yaml:3: store.max_batch"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not Errors", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	a := Auth{Token: "hunter2"}
	js, _ := a.Token.MarshalJSON()
	y, _ := a.Token.MarshalYAML()
	for _, s := range []string{a.Token.String(), string(js), y.(string)} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

func TestTokenFromEnvironment(t *testing.T) {
	tok, err := Auth{}.ResolveToken(func(k string) string {
		if k == "TRIAGE_AUTH_TOKEN" {
			return " abc \n"
		}
		return ""
	})
	if err != nil || tok != "abc" {
		t.Fatalf("token %q %v", tok, err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Auth{TokenFile: empty}).ResolveToken(os.Getenv); err == nil {
		t.Fatal("an empty token file must be an error, not an open API")
	}
}

// The example shipped in deploy/examples must stay valid, and its values
// must be the defaults it claims to show (except where it says otherwise).
func TestShippedExampleIsValid(t *testing.T) {
	c, err := Load("../../deploy/examples/triage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Correlation.Window != d.Correlation.Window || c.Correlation.ResolveAfter != d.Correlation.ResolveAfter ||
		c.Correlation.ReopenWindow != d.Correlation.ReopenWindow || c.HTTP != d.HTTP || c.Store != d.Store ||
		c.Correlation.ResolveTimeout != d.Correlation.ResolveTimeout ||
		strings.Join(c.Correlation.CILabels, ",") != strings.Join(d.Correlation.CILabels, ",") {
		t.Fatalf("the example's values drifted from the defaults it documents: %+v", c)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s")
	if err := os.WriteFile(file, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string { return map[string]string{"SET": " v ", "EMPTY": ""}[k] }
	for _, tc := range []struct {
		name, file, env, want, err string
	}{
		{"file wins, trimmed", file, "SET", "s3cret", ""},
		{"env, trimmed", "", "SET", "v", ""},
		{"neither", "", "", "", ""},
		{"missing file", filepath.Join(dir, "nope"), "", "", "no such file"},
	} {
		got, err := ReadSecret(tc.file, tc.env, env)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %q, %v; want %q, %q", tc.name, got, err, tc.want, tc.err)
		}
	}
	// A configured connector secret must not be empty.
	c := Default()
	c.Jira = Jira{URL: "https://jira.example", Project: "OPS", TokenEnv: "EMPTY"}
	if _, err := c.JiraOptions(env); err == nil || !strings.Contains(err.Error(), "environment variable EMPTY is empty") {
		t.Fatalf("empty token env: %v", err)
	}
	c.Jira.TokenEnv, c.Jira.TokenFile = "", file
	if o, err := c.JiraOptions(env); err != nil || o.Token != "s3cret" {
		t.Fatalf("token file: %q, %v", o.Token, err)
	}
}
