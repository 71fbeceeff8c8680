// Package ruletest runs rule unit tests (`triage rules test`): each test
// gives input events with times and the incidents, drops and alert labels
// the rules and the correlation engine must make of them. The events go
// through the same engine as `triage serve` and `triage replay`.
package ruletest

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/app"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/yamlfile"
	"go.yaml.in/yaml/v3"
)

// File is the format of a rule test file.
type File struct {
	// RuleFiles are the rule files under test, relative to the test file.
	RuleFiles []string `yaml:"rule_files"`
	// CMDB is an optional CMDB file, relative to the test file.
	CMDB string `yaml:"cmdb"`
	// Correlation overrides the default correlation settings (the keys
	// of the config's correlation section).
	Correlation yaml.Node `yaml:"correlation"`
	// Start is the time event offsets count from (default 2026-01-05T00:00:00Z, a Monday).
	Start time.Time `yaml:"start"`
	Tests []Test    `yaml:"tests"`
}

// Test is one test case.
type Test struct {
	Name string `yaml:"name"`
	// Start overrides the file's start for this test.
	Start  time.Time `yaml:"start"`
	Events []Event   `yaml:"events"`
	Expect Expect    `yaml:"expect"`
}

// Event is one input notification, at an offset from the file's start.
type Event struct {
	At          Duration          `yaml:"at"`
	Status      string            `yaml:"status"`
	Severity    string            `yaml:"severity"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Expect is what the events must produce. Only what is given is checked,
// except that Incidents, when given, must list every incident.
type Expect struct {
	Incidents []WantIncident `yaml:"incidents"`
	Dropped   []WantDrop     `yaml:"dropped"`
	Alerts    []WantAlert    `yaml:"alerts"`
}

// WantIncident describes one incident, in id order.
type WantIncident struct {
	// Alerts lists each of its alerts by a subset of its labels; the
	// incident must have exactly these.
	Alerts          []map[string]string `yaml:"alerts"`
	Status          string              `yaml:"status"`
	Priority        string              `yaml:"priority"`
	Severity        string              `yaml:"severity"`
	RootCause       string              `yaml:"root_cause"`
	Service         string              `yaml:"service"`
	AssignmentGroup string              `yaml:"assignment_group"`
	Project         string              `yaml:"jira_project"`
	Held            *bool               `yaml:"held"`
	Labels          map[string]string   `yaml:"labels"`
}

// WantDrop is a dropped event: its rule and a subset of its labels.
type WantDrop struct {
	Rule   string            `yaml:"rule"`
	Labels map[string]string `yaml:"labels"`
}

// WantAlert checks one alert found by a subset of its labels.
type WantAlert struct {
	Match       map[string]string `yaml:"match"`
	Labels      map[string]string `yaml:"labels"`
	Severity    string            `yaml:"severity"`
	Maintenance string            `yaml:"maintenance"`
	CI          string            `yaml:"ci"`
	Rule        string            `yaml:"joined_by_rule"`
}

// Duration is a YAML duration ("90s", "5m").
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

var defaultStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// Result is the outcome of the tests of one file.
type Result struct {
	File     string
	Passed   int
	Failures []Failure
}

// Failure is one failed test with a readable explanation.
type Failure struct {
	Test    string
	Message string
}

// Run runs every test of every file, printing promtool-style progress to
// w. It returns the results; err joins the problems of files that cannot
// run at all (unreadable, invalid, broken rules), with file:line, after
// every other file has run.
func Run(files []string, w io.Writer) ([]Result, error) {
	var out []Result
	var errs []error
	for _, f := range files {
		fmt.Fprintf(w, "Unit testing: %s\n", f)
		r, err := RunFile(f)
		if err != nil {
			fmt.Fprintln(w, "  FAILED: the file cannot run")
			errs = append(errs, err)
			continue
		}
		if len(r.Failures) == 0 {
			fmt.Fprintf(w, "  SUCCESS: %d tests\n", r.Passed)
		} else {
			fmt.Fprintf(w, "  FAILED: %d of %d tests\n", len(r.Failures), r.Passed+len(r.Failures))
			for _, fl := range r.Failures {
				fmt.Fprintf(w, "  test %q:\n%s\n", fl.Test, indent(fl.Message, "    "))
			}
		}
		out = append(out, *r)
	}
	return out, errors.Join(errs...)
}

func indent(s, p string) string {
	return p + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+p)
}

// RunFile runs the tests of one file.
func RunFile(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, yamlfile.Errors{{File: path, Msg: err.Error()}}
	}
	var tf File
	root, err := yamlfile.Decode(path, data, &tf)
	if err != nil {
		return nil, err
	}
	if len(tf.Tests) == 0 {
		return nil, yamlfile.Errors{{File: path, Line: yamlfile.LineOf(root, "tests"), Msg: "tests: at least one test is required"}}
	}
	cfg, err := testConfig(path, root, &tf)
	if err != nil {
		return nil, err
	}
	setup, err := app.LoadSetup(cfg, false)
	if err != nil {
		return nil, err
	}
	start := tf.Start
	if start.IsZero() {
		start = defaultStart
	}
	res := &Result{File: path}
	for i, tc := range tf.Tests {
		name := tc.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		at := start
		if !tc.Start.IsZero() {
			at = tc.Start
		}
		events, err := tc.events(path, root, i, at)
		if err != nil {
			return nil, err
		}
		msg := runTest(setup, cfg, events, tc.Expect)
		if msg == "" {
			res.Passed++
		} else {
			res.Failures = append(res.Failures, Failure{Test: name, Message: msg})
		}
	}
	return res, nil
}

// testConfig is the default config with the file's correlation overrides,
// rule files and CMDB, paths resolved against the test file. Problems in
// the overrides are reported at the line of the correlation key.
func testConfig(path string, root *yaml.Node, tf *File) (*config.Config, error) {
	dir := filepath.Dir(path)
	cfg := config.Default()
	if tf.Correlation.Kind != 0 {
		out, err := yaml.Marshal(&tf.Correlation)
		if err != nil {
			return nil, yamlfile.Errors{{File: path, Line: tf.Correlation.Line, Msg: "correlation: " + err.Error()}}
		}
		doc := "correlation:\n  " + strings.ReplaceAll(strings.TrimRight(string(out), "\n"), "\n", "\n  ") + "\n"
		c, err := config.Parse(path, []byte(doc))
		if err != nil {
			var errs yamlfile.Errors
			if !errors.As(err, &errs) {
				return nil, err
			}
			line := yamlfile.LineOf(root, "correlation")
			for i := range errs {
				errs[i].File, errs[i].Line = path, line
			}
			return nil, errs
		}
		cfg = c
	}
	if tf.CMDB != "" {
		cfg.CMDB.File = join(dir, tf.CMDB)
	}
	for _, f := range tf.RuleFiles {
		cfg.Rules.Files = append(cfg.Rules.Files, join(dir, f))
	}
	return cfg, nil
}

func join(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func (tc Test) events(path string, root *yaml.Node, i int, start time.Time) ([]triage.Event, error) {
	var out []triage.Event
	for j, e := range tc.Events {
		at := start.Add(time.Duration(e.At))
		ev := triage.Event{Source: "test", Status: triage.AlertStatus(e.Status), Severity: e.Severity,
			Labels: maps.Clone(e.Labels), Annotations: e.Annotations, Time: at}
		if ev.Status == triage.AlertResolved {
			ev.EndsAt = at
		}
		if err := ev.Normalize(at); err != nil {
			key := fmt.Sprintf("tests.%d.events.%d", i, j)
			return nil, yamlfile.Errors{{File: path, Line: yamlfile.LineOf(root, key), Msg: fmt.Sprintf("%s: %v", key, err)}}
		}
		out = append(out, ev)
	}
	slices.SortStableFunc(out, func(a, b triage.Event) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// runTest replays the events and returns "" or what differs.
func runTest(setup *app.Setup, cfg *config.Config, events []triage.Event, want Expect) string {
	var drops []dropped
	m := correlate.ReplayEach(setup.NewEngine(cfg), events, func(ev *triage.Event, r correlate.Result) {
		if r.Dropped { // rules work on a copy: ev keeps the labels sent
			drops = append(drops, dropped{rule: r.Rule, labels: ev.Labels})
		}
	})
	var incs []triage.Incident
	for _, inc := range m.Incidents() {
		if inc.MergedInto == nil {
			incs = append(incs, inc)
		}
	}
	var problems []string
	if want.Incidents != nil {
		problems = append(problems, checkIncidents(want.Incidents, incs)...)
	}
	if want.Dropped != nil {
		problems = append(problems, checkDrops(want.Dropped, drops)...)
	}
	for _, wa := range want.Alerts {
		problems = append(problems, checkAlert(wa, incs)...)
	}
	if len(problems) == 0 {
		return ""
	}
	var b strings.Builder
	for _, p := range problems {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	b.WriteString("got:\n")
	b.WriteString(indent(describe(incs, drops), "  "))
	return b.String()
}

type dropped struct {
	rule   string
	labels map[string]string
}

func checkIncidents(want []WantIncident, got []triage.Incident) []string {
	var p []string
	if len(want) != len(got) {
		p = append(p, fmt.Sprintf("incidents: want %d, got %d", len(want), len(got)))
	}
	for i := 0; i < len(want) && i < len(got); i++ {
		w, g := want[i], got[i]
		at := fmt.Sprintf("incident %d (%s)", i+1, g.Key)
		field := func(name, want, got string) {
			if want != "" && want != got {
				p = append(p, fmt.Sprintf("%s: %s: want %q, got %q", at, name, want, got))
			}
		}
		field("status", w.Status, string(g.Status))
		field("priority", w.Priority, g.Priority)
		field("severity", w.Severity, g.Severity)
		field("root_cause", w.RootCause, g.RootCause.CI)
		field("service", w.Service, g.Service)
		field("assignment_group", w.AssignmentGroup, g.AssignmentGroup)
		field("jira_project", w.Project, g.Project)
		if w.Held != nil && *w.Held != g.Held {
			p = append(p, fmt.Sprintf("%s: held: want %v, got %v", at, *w.Held, g.Held))
		}
		for k, v := range w.Labels {
			if g.Labels[k] != v {
				p = append(p, fmt.Sprintf("%s: label %s: want %q, got %q", at, k, v, g.Labels[k]))
			}
		}
		if w.Alerts != nil {
			p = append(p, matchAlerts(at, w.Alerts, g.Alerts)...)
		}
	}
	return p
}

// matchAlerts pairs each wanted label subset with one distinct alert.
func matchAlerts(at string, want []map[string]string, got []triage.Alert) []string {
	var p []string
	if len(want) != len(got) {
		p = append(p, fmt.Sprintf("%s: alerts: want %d, got %d", at, len(want), len(got)))
	}
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for j := range got {
			if !used[j] && subset(w, got[j].Labels) {
				used[j], found = true, true
				break
			}
		}
		if !found {
			p = append(p, fmt.Sprintf("%s: no alert matches %s", at, labelString(w)))
		}
	}
	return p
}

func checkDrops(want []WantDrop, got []dropped) []string {
	var p []string
	if len(want) != len(got) {
		p = append(p, fmt.Sprintf("dropped: want %d events, got %d", len(want), len(got)))
	}
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for j := range got {
			if !used[j] && (w.Rule == "" || w.Rule == got[j].rule) && subset(w.Labels, got[j].labels) {
				used[j], found = true, true
				break
			}
		}
		if !found {
			p = append(p, fmt.Sprintf("dropped: no event %s dropped by rule %q", labelString(w.Labels), w.Rule))
		}
	}
	return p
}

func checkAlert(w WantAlert, incs []triage.Incident) []string {
	for _, inc := range incs {
		for _, a := range inc.Alerts {
			if !subset(w.Match, a.Labels) {
				continue
			}
			var p []string
			at := "alert " + labelString(w.Match)
			for k, v := range w.Labels {
				if a.Labels[k] != v {
					p = append(p, fmt.Sprintf("%s: label %s: want %q, got %q", at, k, v, a.Labels[k]))
				}
			}
			check := func(name, want, got string) {
				if want != "" && want != got {
					p = append(p, fmt.Sprintf("%s: %s: want %q, got %q", at, name, want, got))
				}
			}
			check("severity", w.Severity, a.Severity)
			check("maintenance", w.Maintenance, a.Maintenance)
			check("ci", w.CI, a.CI)
			check("joined_by_rule", w.Rule, a.Joined.Rule)
			return p
		}
	}
	return []string{fmt.Sprintf("alert %s: no such alert in any incident", labelString(w.Match))}
}

func subset(want, got map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func labelString(l map[string]string) string {
	parts := make([]string, 0, len(l))
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// describe renders what the engine made, for failure messages.
func describe(incs []triage.Incident, drops []dropped) string {
	var b strings.Builder
	for _, inc := range incs {
		fmt.Fprintf(&b, "%s %s %s root_cause=%s", inc.Key, inc.Status, inc.Priority, orDash(inc.RootCause.CI))
		if inc.AssignmentGroup != "" {
			fmt.Fprintf(&b, " assignment_group=%s", inc.AssignmentGroup)
		}
		if inc.Project != "" {
			fmt.Fprintf(&b, " jira_project=%s", inc.Project)
		}
		if inc.Held {
			b.WriteString(" held")
		}
		b.WriteByte('\n')
		for _, a := range inc.Alerts {
			fmt.Fprintf(&b, "  %s (%s)\n", labelString(a.Labels), a.Joined.Reason)
		}
	}
	for _, d := range drops {
		fmt.Fprintf(&b, "dropped by %s: %s\n", d.rule, labelString(d.labels))
	}
	if b.Len() == 0 {
		return "no incidents, nothing dropped"
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
