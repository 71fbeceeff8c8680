package rules

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/yamlfile"
)

func mustParse(t testing.TB, src string) *Set {
	t.Helper()
	s, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

var (
	dbOrders = &triage.CI{ID: "db-orders", Type: "database", Name: "orders-db", Service: "orders",
		Attributes: map[string]string{"tier": "1"}}
	webCI = &triage.CI{ID: "web-1", Type: "host", Attributes: map[string]string{"tier": "3"}}
	noon  = at("2026-06-01T12:00:00Z")
)

func event(labels ...string) *triage.Event {
	ev := &triage.Event{Source: "prometheus", Status: triage.AlertFiring, Severity: triage.SeverityWarning,
		Labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		ev.Labels[labels[i]] = labels[i+1]
	}
	ev.Fingerprint = triage.Fingerprint(ev.Labels)
	return ev
}

const admitRules = `
rules:
  - name: payments-base
    kind: enrich
    if: alert.labels.service == "payments"
    set:
      labels: {team: platform, tier: gold}
      priority: P3
      service: payments
      jira_project: OPS
  - name: payments-tier1
    kind: enrich
    if: alert.labels.service == "payments" && ci.attributes.tier == "1"
    set:
      labels: {team: payments}
      severity: page
      priority: p1
      assignment_group: payments-oncall
      jira_project: PAY
  - name: staging-windows
    kind: maintenance
    if: alert.labels.env == "staging"
    action: annotate
    start: 2026-05-01T00:00:00Z
    end: 2026-07-01T00:00:00Z
  - name: db-patching
    kind: maintenance
    ci: [db-orders, db-users]
    start: 2026-06-01T11:00:00Z
    end: 2026-06-01T13:00:00Z
  - name: scoped-both
    kind: maintenance
    ci: [web-1]
    if: alert.labels.alertname == "DiskFull"
    start: 2026-06-01T11:00:00Z
    end: 2026-06-01T13:00:00Z
  - name: drop-watchdog
    kind: drop
    if: alert.labels.alertname == "Watchdog"
    reason: heartbeat, not a problem
  - name: drop-platform-info
    kind: drop
    if: alert.labels.team == "platform" && alert.severity == "info"
  - name: drop-unbound-db
    kind: drop
    if: ci.type == "database" && alert.ci == ""
`

func TestAdmit(t *testing.T) {
	s := mustParse(t, admitRules)
	tests := []struct {
		name       string
		ev         *triage.Event
		ci         *triage.CI
		now        time.Time
		want       correlate.Admission
		wantLabels map[string]string // nil: unchanged
		wantSev    string
	}{
		{name: "nothing matches", ev: event("alertname", "HighLatency", "service", "orders"),
			want: correlate.Admission{}, wantSev: "warning"},
		{name: "drop with reason", ev: event("alertname", "Watchdog"),
			want: correlate.Admission{Drop: true, Rule: "drop-watchdog", Reason: "heartbeat, not a problem"}, wantSev: "warning"},
		{name: "enrich one rule", ev: event("alertname", "X", "service", "payments"), ci: webCI,
			want: correlate.Admission{Routing: triage.Routing{Priority: "P3", Service: "payments", Project: "OPS"},
				Enriched: []string{"payments-base"}},
			wantLabels: map[string]string{"alertname": "X", "service": "payments", "team": "platform", "tier": "gold"},
			wantSev:    "warning"},
		{name: "later enrich overwrites earlier", ev: event("alertname", "X", "service", "payments"), ci: dbOrders,
			want: correlate.Admission{Routing: triage.Routing{Severity: "critical", Priority: "P1", Service: "payments",
				AssignmentGroup: "payments-oncall", Project: "PAY"}, Enriched: []string{"payments-base", "payments-tier1"}},
			wantLabels: map[string]string{"alertname": "X", "service": "payments", "team": "payments", "tier": "gold"},
			wantSev:    "critical"},
		{name: "drop sees enriched labels, default reason", ev: func() *triage.Event {
			ev := event("alertname", "X", "service", "payments")
			ev.Severity = "info"
			return ev
		}(), ci: webCI,
			want: correlate.Admission{Drop: true, Rule: "drop-platform-info", Reason: "dropped by rule drop-platform-info",
				Routing: triage.Routing{Priority: "P3", Service: "payments", Project: "OPS"}, Enriched: []string{"payments-base"}},
			wantLabels: map[string]string{"alertname": "X", "service": "payments", "team": "platform", "tier": "gold"},
			wantSev:    "info"},
		{name: "CI-scoped window suppresses its CI", ev: event("alertname", "ReplicationLag"), ci: dbOrders, now: noon,
			want:    correlate.Admission{Drop: true, Rule: "db-patching", Reason: "maintenance window db-patching (until 2026-06-01T13:00:00Z)"},
			wantSev: "warning"},
		{name: "CI-scoped window ends at end", ev: event("alertname", "ReplicationLag"), ci: dbOrders, now: at("2026-06-01T13:00:00Z"),
			want: correlate.Admission{}, wantSev: "warning"},
		{name: "CI-scoped window starts at start", ev: event("alertname", "ReplicationLag"), ci: dbOrders, now: at("2026-06-01T11:00:00Z"),
			want:    correlate.Admission{Drop: true, Rule: "db-patching", Reason: "maintenance window db-patching (until 2026-06-01T13:00:00Z)"},
			wantSev: "warning"},
		{name: "CI-scoped window spares other CIs", ev: event("alertname", "ReplicationLag"), ci: webCI, now: noon,
			want: correlate.Admission{}, wantSev: "warning"},
		{name: "CI-scoped window spares unbound alerts", ev: event("alertname", "ReplicationLag", "ci", "db-orders"), now: noon,
			want: correlate.Admission{}, wantSev: "warning"},
		{name: "ci and if both needed", ev: event("alertname", "DiskFull"), ci: webCI, now: noon,
			want:    correlate.Admission{Drop: true, Rule: "scoped-both", Reason: "maintenance window scoped-both (until 2026-06-01T13:00:00Z)"},
			wantSev: "warning"},
		{name: "ci without if match", ev: event("alertname", "CPUHigh"), ci: webCI, now: noon,
			want: correlate.Admission{}, wantSev: "warning"},
		{name: "annotating window goes on to drop rules", ev: event("alertname", "Watchdog", "env", "staging"), now: noon,
			want: correlate.Admission{Drop: true, Rule: "drop-watchdog", Reason: "heartbeat, not a problem",
				Maintenance: "staging-windows"}, wantSev: "warning"},
		{name: "annotating window", ev: event("alertname", "X", "env", "staging"), now: noon,
			want: correlate.Admission{Maintenance: "staging-windows"}, wantSev: "warning"},
		{name: "annotating window over", ev: event("alertname", "X", "env", "staging"), now: at("2026-07-01T00:00:00Z"),
			want: correlate.Admission{}, wantSev: "warning"},
		{name: "suppress wins over drop rule", ev: event("alertname", "Watchdog"), ci: dbOrders, now: noon,
			want:    correlate.Admission{Drop: true, Rule: "db-patching", Reason: "maintenance window db-patching (until 2026-06-01T13:00:00Z)"},
			wantSev: "warning"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := maps.Clone(tt.ev.Labels)
			shared := tt.ev.Labels
			now := tt.now
			if now.IsZero() {
				now = at("2026-01-01T00:00:00Z")
			}
			got := s.Admit(tt.ev, tt.ci, now)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Admit =\n%+v, want\n%+v", got, tt.want)
			}
			want := tt.wantLabels
			if want == nil {
				want = orig
			}
			if !maps.Equal(tt.ev.Labels, want) {
				t.Errorf("labels = %v, want %v", tt.ev.Labels, want)
			}
			if !maps.Equal(shared, orig) {
				t.Errorf("the caller's label map was changed: %v", shared)
			}
			if tt.ev.Severity != tt.wantSev {
				t.Errorf("severity = %q, want %q", tt.ev.Severity, tt.wantSev)
			}
		})
	}
	if n := s.Errors(); n != 0 {
		t.Errorf("Errors() = %d, want 0: missing labels and an unbound CI are not errors", n)
	}
}

func TestRecurringWindowAcrossDST(t *testing.T) {
	s := mustParse(t, `
rules:
  - name: sunday-patching
    kind: maintenance
    ci: [db-orders]
    schedule: "0 2 * * SUN"
    duration: 2h
    time_zone: Europe/Berlin
  - name: nightly-utc
    kind: maintenance
    ci: [web-1]
    schedule: "30 23 * * *"
    duration: 1h
`)
	tests := []struct {
		name  string
		ci    *triage.CI
		now   string
		until string // "": not in a window
	}{
		{"winter: 02:00 CET is 01:00Z", dbOrders, "2026-03-22T01:00:00Z", "2026-03-22T03:00:00Z"},
		{"winter: before the window", dbOrders, "2026-03-22T00:59:59Z", ""},
		{"winter: last second", dbOrders, "2026-03-22T02:59:59Z", "2026-03-22T03:00:00Z"},
		{"winter: after the window", dbOrders, "2026-03-22T03:00:00Z", ""},
		{"not on a Monday", dbOrders, "2026-03-23T01:30:00Z", ""},
		// On 2026-03-29 the clock jumps from 02:00 CET to 03:00 CEST: the
		// 02:00 activation starts at 03:00 CEST (01:00Z), not skipped.
		{"spring forward: 02:00 starts at 03:00 CEST", dbOrders, "2026-03-29T01:00:00Z", "2026-03-29T03:00:00Z"},
		{"spring forward: not before", dbOrders, "2026-03-29T00:59:00Z", ""},
		{"summer: 02:00 CEST is 00:00Z", dbOrders, "2026-04-05T00:00:00Z", "2026-04-05T02:00:00Z"},
		{"summer: over at 02:00Z", dbOrders, "2026-04-05T02:30:00Z", ""},
		{"summer: not at 23:30Z the day before", dbOrders, "2026-04-04T23:30:00Z", ""},
		// On 2026-10-25 02:00-03:00 comes twice: the window starts at the
		// first 02:00 (CEST, 00:00Z) and lasts two real hours.
		{"fall back: first 02:00", dbOrders, "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"},
		{"fall back: second 02:30 still in the window", dbOrders, "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"},
		{"fall back: no second window", dbOrders, "2026-10-25T02:30:00Z", ""},
		{"after fall back: 02:00 CET is 01:00Z", dbOrders, "2026-11-01T01:00:00Z", "2026-11-01T03:00:00Z"},
		{"other CI spared", webCI, "2026-03-22T01:30:00Z", ""},
		{"UTC default, across midnight", webCI, "2026-03-23T00:15:00Z", "2026-03-23T00:30:00Z"},
		{"UTC default, before", webCI, "2026-03-22T23:29:00Z", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh set per case: the window's cache must not decide.
			fresh := mustParse(t, strings.TrimSpace(admitRulesDST))
			for _, set := range []*Set{s, fresh} {
				got := set.Admit(event("alertname", "X"), tt.ci, at(tt.now))
				want := correlate.Admission{}
				if tt.until != "" {
					name := "sunday-patching"
					if tt.ci == webCI {
						name = "nightly-utc"
					}
					want = correlate.Admission{Drop: true, Rule: name,
						Reason: "maintenance window " + name + " (until " + tt.until + ")"}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("Admit at %s = %+v, want %+v", tt.now, got, want)
				}
			}
		})
	}
}

const admitRulesDST = `
rules:
  - name: sunday-patching
    kind: maintenance
    ci: [db-orders]
    schedule: "0 2 * * SUN"
    duration: 2h
    time_zone: Europe/Berlin
  - name: nightly-utc
    kind: maintenance
    ci: [web-1]
    schedule: "30 23 * * *"
    duration: 1h
`

func TestOneOffWindowInTimeZone(t *testing.T) {
	// Local times without an offset are read in time_zone; this window
	// spans the spring-forward night, so it lasts 5 real hours, not 6.
	s := mustParse(t, `
rules:
  - name: migration
    kind: maintenance
    ci: [db-orders]
    start: 2026-03-28T22:00
    end: "2026-03-29 04:00:00"
    time_zone: Europe/Berlin
  - name: offset-wins
    kind: maintenance
    ci: [web-1]
    start: 2026-03-28T22:00:00+00:00
    end: 2026-03-28T23:00:00Z
    time_zone: Europe/Berlin
`)
	tests := []struct {
		name string
		ci   *triage.CI
		now  string
		drop bool
	}{
		{"before start (22:00 CET is 21:00Z)", dbOrders, "2026-03-28T20:59:59Z", false},
		{"at start", dbOrders, "2026-03-28T21:00:00Z", true},
		{"last second (04:00 CEST is 02:00Z)", dbOrders, "2026-03-29T01:59:59Z", true},
		{"at end", dbOrders, "2026-03-29T02:00:00Z", false},
		{"explicit offset ignores time_zone", webCI, "2026-03-28T22:30:00Z", true},
		{"explicit offset, before", webCI, "2026-03-28T21:30:00Z", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Admit(event("alertname", "X"), tt.ci, at(tt.now)); got.Drop != tt.drop {
				t.Errorf("Drop = %v, want %v (%+v)", got.Drop, tt.drop, got)
			}
		})
	}
}

func TestCorrelate(t *testing.T) {
	s := mustParse(t, `
rules:
  - name: same-cluster
    kind: correlate
    if: alert.labels.cluster != "" && alert.labels.cluster == incident.labels.cluster
  - name: db-root-cause
    kind: correlate
    if: incident.root_cause != "" && incident.root_cause == alert.ci && incident.alert_count < 50 && incident.status == "open"
  - name: same-service-ci
    kind: correlate
    if: ci.service != "" && ci.service == incident.service && incident.key startsWith "INC-"
`)
	inc := &triage.Incident{ID: 7, Key: "INC-7", Status: triage.IncidentOpen, Service: "orders", AlertCount: 3,
		Labels: map[string]string{"cluster": "eu-1"}, RootCause: triage.RootCause{CI: "db-orders"}}
	tests := []struct {
		name     string
		alert    *triage.Alert
		ci       *triage.CI
		inc      *triage.Incident
		wantRule string
	}{
		{"incident labels", &triage.Alert{Labels: map[string]string{"cluster": "eu-1"}}, nil, inc, "same-cluster"},
		{"other cluster", &triage.Alert{Labels: map[string]string{"cluster": "us-1"}}, nil, inc, ""},
		{"both without cluster do not match", &triage.Alert{Labels: map[string]string{}}, nil,
			&triage.Incident{Key: "INC-8", Status: triage.IncidentOpen}, ""},
		{"root cause CI", &triage.Alert{CI: "db-orders", Labels: map[string]string{"cluster": "us-1"}}, nil, inc, "db-root-cause"},
		{"root cause, incident acknowledged", &triage.Alert{CI: "db-orders"}, nil,
			&triage.Incident{Key: "INC-9", Status: triage.IncidentAcknowledged, RootCause: triage.RootCause{CI: "db-orders"}}, ""},
		{"first match wins", &triage.Alert{CI: "db-orders", Labels: map[string]string{"cluster": "eu-1"}}, nil, inc, "same-cluster"},
		{"bound CI's service", &triage.Alert{CI: "db-orders"}, dbOrders,
			&triage.Incident{Key: "INC-10", Service: "orders"}, "same-service-ci"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, ok := s.Correlate(tt.alert, tt.ci, tt.inc)
			if rule != tt.wantRule || ok != (tt.wantRule != "") {
				t.Errorf("Correlate = %q, %v; want %q", rule, ok, tt.wantRule)
			}
		})
	}
}

func TestGroup(t *testing.T) {
	s := mustParse(t, `
rules:
  - name: by-cluster
    kind: group
    if: '"cluster" in alert.labels'
    by: [cluster, alertname]
    window: 10m
  - name: databases
    kind: group
    if: ci.type == "database"
    by: [service]
    window: "0"
  - name: everything-else
    kind: group
    by: [alertname]
`)
	tests := []struct {
		name  string
		alert *triage.Alert
		ci    *triage.CI
		want  correlate.GroupRule
	}{
		{"label present", &triage.Alert{Labels: map[string]string{"cluster": "", "alertname": "A"}}, dbOrders,
			correlate.GroupRule{Name: "by-cluster", By: []string{"cluster", "alertname"}, Window: 10 * time.Minute}},
		{"ci type, engine window", &triage.Alert{Labels: map[string]string{"alertname": "A"}}, dbOrders,
			correlate.GroupRule{Name: "databases", By: []string{"service"}}},
		{"no if matches all", &triage.Alert{Labels: map[string]string{"alertname": "A"}}, nil,
			correlate.GroupRule{Name: "everything-else", By: []string{"alertname"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.Group(tt.alert, tt.ci)
			if !ok || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Group = %+v, %v; want %+v", got, ok, tt.want)
			}
		})
	}
	if _, ok := mustParse(t, "rules: []").Group(&triage.Alert{}, nil); ok {
		t.Error("Group without group rules: ok")
	}
}

func TestNilSet(t *testing.T) {
	var s *Set
	ev := event("alertname", "X")
	if got := s.Admit(ev, nil, noon); fmt.Sprint(got) != fmt.Sprint(correlate.Admission{}) {
		t.Errorf("Admit = %+v", got)
	}
	if _, ok := s.Correlate(&triage.Alert{}, nil, &triage.Incident{}); ok {
		t.Error("Correlate: ok")
	}
	if _, ok := s.Group(&triage.Alert{}, nil); ok {
		t.Error("Group: ok")
	}
	if s.Len() != 0 || s.Hash() != "" || s.Rules() != nil || s.Errors() != 0 || s.CheckCIs(nil) != nil {
		t.Error("nil set is not empty")
	}
}

func TestRuntimeErrorCounted(t *testing.T) {
	s := mustParse(t, `
rules:
  - name: convert
    kind: drop
    if: int(alert.labels.n) > 3
  - name: budget
    kind: drop
    if: len(1..int(alert.labels.big)) > 0
  - name: index
    kind: correlate
    if: alert.labels.x[5:1] == "" && ci.aliases[3] == "z"
  - name: fine
    kind: drop
    if: alert.labels.n == "last"
`)
	tests := []struct {
		name       string
		labels     []string
		wantDrop   string
		wantErrors uint64
	}{
		{"conversion error", []string{"n", "x", "big", "0"}, "", 1},
		{"memory budget", []string{"n", "1", "big", "200000"}, "", 1}, // within expr's default budget
		{"both, then a match", []string{"n", "last", "big", "100000000"}, "fine", 2},
		{"no error", []string{"n", "4", "big", "0"}, "convert", 0},
	}
	total := uint64(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Admit(event(tt.labels...), nil, noon)
			if got.Rule != tt.wantDrop {
				t.Errorf("dropped by %q, want %q", got.Rule, tt.wantDrop)
			}
			total += tt.wantErrors
			if s.Errors() != total {
				t.Errorf("Errors() = %d, want %d", s.Errors(), total)
			}
		})
	}
	if _, ok := s.Correlate(&triage.Alert{Labels: map[string]string{"x": "abcdefgh"}}, nil, &triage.Incident{}); ok {
		t.Error("Correlate matched on an error")
	}
	total++
	if s.Errors() != total {
		t.Errorf("Errors() = %d, want %d", s.Errors(), total)
	}
	byRule := map[string]uint64{}
	for _, in := range s.Rules() {
		byRule[in.Name] = in.Errors
	}
	if want := map[string]uint64{"convert": 2, "budget": 2, "index": 1, "fine": 0}; !maps.Equal(byRule, want) {
		t.Errorf("errors by rule = %v, want %v", byRule, want)
	}
}

func TestParseErrors(t *testing.T) {
	const f = "testdata/broken.yaml"
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		f + `:6: rule "unknown-key": unknown key colour`,
		f + `:7: rules[1]: name is required`,
		f + `:9: rule "no-kind": kind is required: one of drop, enrich, group, correlate, maintenance, log`,
		f + `:11: rule "no-if": if is required in a drop rule`,
		f + `:13: rule "unknown-key": name: duplicate name, first defined at testdata/broken.yaml:3`,
		f + `:17: rule "bad-kind": kind: unknown kind "silence": want one of drop, enrich, group, correlate, maintenance, log`,
		f + `:22: rule "by-on-drop": by: not valid in a drop rule (only in group rules)`,
		f + `:27: rule "bad-set": set.severity: "sev9" is not a known severity: want critical, error, warning or info`,
		f + `:28: rule "bad-set": set.priority: "P7" is not a priority P1..P5`,
		f + `:29: rule "bad-set": set.jira_project: "pay" is not a Jira project key (capital letter, then capitals, digits or _)`,
		f + `:30: rule "bad-set": set: unknown key owner`,
		f + `:34: rule "bad-window": window: "ten minutes" is not a duration such as 90s, 10m or 1h30m`,
		f + `:38: rule "negative-window": window: -5m is negative`,
		f + `:41: rule "empty-by": by: at least one label name is required`,
		f + `:45: rule "bad-cron": schedule: invalid cron expression "0 2 * *": expected exactly 5 fields, found 4: [0 2 * *]`,
		f + `:52: rule "bad-zone": time_zone: unknown time zone "Mars/Olympus_Mons": want an IANA name such as Europe/Berlin or UTC`,
		f + `:57: rule "end-before-start": end: 2026-11-29T02:00:00Z is not after start 2026-11-29T04:00:00Z`,
		f + `:58: rule "no-time": a maintenance rule needs start and end, or schedule and duration`,
		f + `:61: rule "no-scope": a maintenance rule needs ci, if or both: without a scope it would match every alert`,
		f + `:69: rule "bad-duration": duration: "2 hours" is not a duration such as 90s, 10m or 1h30m`,
		f + `:72: rule "type-error": if: expected bool, but got string`,
		f + `:75: rule "unknown-field": if: alert has no field labelz (column 7)`,
		f + `:79: rule "incident-outside-correlate": if: unknown name incident (column 1); incident is only known in correlate rules`,
		f + `:83: rule "bad-action": action: "silence" is not suppress or annotate`,
	}
	_, err = Parse(f, data)
	var errs yamlfile.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse: %v, want yamlfile.Errors", err)
	}
	got := strings.Split(err.Error(), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("Parse errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseErrorsMore(t *testing.T) {
	big := "rules:\n  - name: big\n    kind: drop\n    if: " + strings.Repeat(`alert.labels.a == "x" || `, 170) + "true\n"
	wide := "rules:\n  - name: wide\n    kind: drop\n    if: alert.labels.a in [" + strings.Repeat(`"a",`, 999) + "\"b\"]\n"
	tests := []struct {
		name string
		src  string
		want []string // problems as file:line: message; "prefix~sub": starts with prefix, contains sub
	}{
		// yaml.v3 reports the line of the enclosing construct, not of the
		// broken indentation or quote.
		{"YAML syntax", "rules:\n  - name: x\n   kind: drop\n", []string{"test.yaml:1: did not find expected '-' indicator"}},
		{"quoted start of an if needs quoting", "rules:\n  - name: x\n    kind: group\n    if: \"cluster\" in alert.labels\n    by: [cluster]\n",
			[]string{"test.yaml:1: did not find expected key"}},
		{"rules not a list", "rules: {name: x}\n", []string{"test.yaml:1: rules: want a list of rules"}},
		{"a rule not a mapping", "rules:\n  - drop-everything\n", []string{"test.yaml:2: rules[0]: want a rule: a mapping with name, kind and if"}},
		{"top-level unknown key", "rule:\n  - name: x\n", []string{"test.yaml:1: unknown key rule"}},
		{"second document", "rules: []\n---\nrules: []\n", []string{"test.yaml:2: a second YAML document (---): put everything in one"}},
		{"expression too long", big, []string{"test.yaml:4: rule \"big\": if: ~bytes: at most 4096 allowed"}},
		{"too many nodes", wide, []string{"test.yaml:4: rule \"wide\": if: compilation failed: expression exceeds maximum allowed nodes (column 4003)"}},
		{"multi-line if: position inside", "rules:\n  - name: ml\n    kind: drop\n    if: |\n      alert.labels.a == \"x\" &&\n        alert.nope\n",
			[]string{"test.yaml:4: rule \"ml\": if: alert has no field nope (line 2, column 9 of the expression)"}},
		{"nested predicates", "rules:\n  - name: n\n    kind: drop\n    if: any(keys(alert.labels), {all(1..1000, {# > 0})})\n",
			[]string{"test.yaml:4: rule \"n\": if: a predicate inside a predicate (e.g. any(..., all(...))): their costs multiply, so rules may not nest them"}},
		{"now() is not available", "rules:\n  - name: n\n    kind: drop\n    if: now().Hour() > 3\n",
			[]string{"test.yaml:4: rule \"n\": if: ~unknown name now"}},
		{"TZ prefix in schedule", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    schedule: TZ=Europe/Berlin 0 2 * * *\n    duration: 1h\n",
			[]string{"test.yaml:5: rule \"m\": schedule: invalid cron expression \"TZ=Europe/Berlin 0 2 * * *\": set time_zone instead of a TZ= prefix"}},
		{"TZ prefix without a space", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    schedule: CRON_TZ=UTC\n    duration: 1h\n",
			[]string{"test.yaml:5: ~set time_zone instead"}},
		{"schedule never fires", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    schedule: 0 0 30 2 *\n    duration: 1h\n",
			[]string{"test.yaml:5: rule \"m\": schedule: invalid cron expression \"0 0 30 2 *\": it never fires"}},
		{"descriptor", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    schedule: '@daily'\n    duration: 1h\n",
			[]string{"test.yaml:5: ~does not accept descriptors"}},
		{"schedule without duration", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    schedule: 0 2 * * *\n",
			[]string{"test.yaml:2: rule \"m\": duration is required with schedule: how long each window lasts"}},
		{"zero duration", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    schedule: 0 2 * * *\n    duration: 0\n",
			[]string{"test.yaml:6: rule \"m\": duration: must be positive"}},
		{"schedule and start", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    schedule: 0 2 * * *\n    duration: 1h\n    start: 2026-01-01T00:00:00Z\n",
			[]string{"test.yaml:5: ~either recurring (schedule, duration) or one-off (start, end), not both"}},
		{"start without end", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    start: 2026-01-01T00:00:00Z\n",
			[]string{"test.yaml:2: rule \"m\": a one-off window needs both start and end"}},
		{"duration with start and end", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    start: 2026-01-01T00:00:00Z\n    end: 2026-01-01T01:00:00Z\n    duration: 1h\n",
			[]string{"test.yaml:7: rule \"m\": duration: only with schedule: a one-off window ends at end"}},
		{"bad time", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    start: tomorrow\n    end: 2026-01-01T01:00:00Z\n",
			[]string{"test.yaml:5: rule \"m\": start: \"tomorrow\" is not a time such as 2026-11-29T02:00:00Z or 2026-11-29T02:00 (in time_zone)"}},
		{"equal start and end", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    start: 2026-01-01T01:00:00Z\n    end: 2026-01-01T01:00:00Z\n",
			[]string{"test.yaml:6: rule \"m\": end: 2026-01-01T01:00:00Z is not after start 2026-01-01T01:00:00Z"}},
		{"Local is not a time zone here", "rules:\n  - name: m\n    kind: maintenance\n    ci: [a]\n    schedule: 0 2 * * *\n    duration: 1h\n    time_zone: Local\n",
			[]string{"test.yaml:7: ~unknown time zone \"Local\""}},
		{"empty ci entry and duplicate", "rules:\n  - name: m\n    kind: maintenance\n    ci:\n      - a\n      - ''\n      - a\n    start: 2026-01-01T00:00:00Z\n    end: 2026-01-01T01:00:00Z\n",
			[]string{"test.yaml:6: rule \"m\": ci.1: want a non-empty CI id", "test.yaml:7: rule \"m\": ci.2: \"a\" is listed twice"}},
		{"by not a list", "rules:\n  - name: g\n    kind: group\n    by: cluster\n",
			[]string{"test.yaml:4: rule \"g\": by: want a list of label names, e.g. [a, b]"}},
		{"group without by", "rules:\n  - name: g\n    kind: group\n",
			[]string{"test.yaml:2: rule \"g\": by is required in a group rule: the labels to group by"}},
		{"enrich without set", "rules:\n  - name: e\n    kind: enrich\n    if: 'true'\n",
			[]string{"test.yaml:2: rule \"e\": set is required in an enrich rule"}},
		{"enrich sets nothing", "rules:\n  - name: e\n    kind: enrich\n    if: 'true'\n    set: {}\n",
			[]string{"test.yaml:5: ~set nothing"}},
		{"labels not a mapping", "rules:\n  - name: e\n    kind: enrich\n    if: 'true'\n    set:\n      labels: [a]\n",
			[]string{"test.yaml:6: rule \"e\": set.labels: want a mapping of label names to values"}},
		{"empty service", "rules:\n  - name: e\n    kind: enrich\n    if: 'true'\n    set: {service: ''}\n",
			[]string{"test.yaml:5: rule \"e\": set.service: empty"}},
		{"name not a string", "rules:\n  - name: [a]\n    kind: drop\n    if: 'true'\n",
			[]string{"test.yaml:2: rules[0]: name: want a string"}},
		{"name with a newline", "rules:\n  - name: \"a\\nb\"\n    kind: drop\n    if: 'true'\n",
			[]string{"test.yaml:2: rules[0]: name: want at most 128 bytes of printable UTF-8"}},
		{"empty if in a group rule", "rules:\n  - name: g\n    kind: group\n    if: ''\n    by: [a]\n",
			[]string{"test.yaml:4: rule \"g\": if: empty expression: leave if out to match every alert"}},
		{"unknown key with other problems", "rules:\n  - name: x\n    kind: drop\n    iff: 'true'\n",
			[]string{"test.yaml:2: rule \"x\": if is required in a drop rule", "test.yaml:4: rule \"x\": unknown key iff"}},
		{"file too large", "#" + strings.Repeat("x", MaxFileBytes),
			[]string{"test.yaml: rule file of 1048577 bytes: at most 1048576 allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.src))
			var errs yamlfile.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse: %v, want yamlfile.Errors", err)
			}
			got := strings.Split(err.Error(), "\n")
			ok := len(got) == len(tt.want)
			for i := 0; ok && i < len(got); i++ {
				if prefix, sub, found := strings.Cut(tt.want[i], "~"); found {
					ok = strings.HasPrefix(got[i], prefix) && strings.Contains(got[i], sub)
					continue
				}
				ok = got[i] == tt.want[i]
			}
			if !ok {
				t.Errorf("Parse errors:\n%s\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseOK(t *testing.T) {
	tests := []struct {
		name string
		src  string
		n    int
	}{
		{"empty file", "", 0},
		{"only comments", "# no rules yet\n", 0},
		{"empty list", "rules: []\n", 0},
		{"JSON", `{"rules": [{"name": "j", "kind": "drop", "if": "alert.source == 'x'"}]}`, 1},
		{"anchors and merge keys", `
common: &c {kind: drop}
rules:
  - <<: *c
    name: a
    if: alert.labels.a == "1"
`, -1}, // a top-level key other than rules is unknown
		{"merge key in a rule", `
rules:
  - &base {name: a, kind: drop, if: alert.labels.a == "1"}
  - <<: *base
    name: b
`, 2},
		{"multi-line expression", `
rules:
  - name: ml
    kind: drop
    if: >-
      alert.labels.alertname in ["Watchdog", "InfoInhibitor"]
      or alert.labels.severity == "none"
`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("test.yaml", []byte(tt.src))
			if tt.n < 0 {
				if err == nil {
					t.Fatal("Parse: no error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if s.Len() != tt.n {
				t.Errorf("Len = %d, want %d", s.Len(), tt.n)
			}
		})
	}
}

func TestExample(t *testing.T) {
	s, err := Load([]string{"testdata/example.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range s.Rules() {
		got = append(got, fmt.Sprintf("%s %s %s:%d", in.Name, in.Kind, in.File, in.Line))
	}
	want := []string{
		"drop-watchdog drop testdata/example.yaml:3",
		"payments enrich testdata/example.yaml:8",
		"same-cluster correlate testdata/example.yaml:19",
		"by-cluster group testdata/example.yaml:23",
		"db-patching maintenance testdata/example.yaml:29",
		"black-friday-freeze maintenance testdata/example.yaml:36",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// 2026-11-27T00:00 in New York is 05:00Z.
	ev := event("alertname", "X", "env", "staging")
	if got := s.Admit(ev, nil, at("2026-11-27T05:00:00Z")); got.Maintenance != "black-friday-freeze" {
		t.Errorf("Admit = %+v, want the freeze annotation", got)
	}
	if got := s.Admit(ev, nil, at("2026-11-27T04:59:59Z")); got.Maintenance != "" {
		t.Errorf("Admit = %+v, want no annotation before 00:00 New York", got)
	}
	known := func(id string) bool { return id == "db-orders" }
	err = s.CheckCIs(known)
	if err == nil || err.Error() != `testdata/example.yaml:31: rule "db-patching": ci: "db-users" is not a CI of the CMDB` {
		t.Errorf("CheckCIs = %v", err)
	}
}

func TestLoad(t *testing.T) {
	t.Run("glob order and enrich overwrite across files", func(t *testing.T) {
		s, err := Load([]string{"testdata/load/*.yaml", "testdata/load/10-base.yaml", "testdata/nothing-*.yaml"})
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != 2 {
			t.Fatalf("Len = %d, want 2 (each file once)", s.Len())
		}
		ev := event("service", "payments")
		got := s.Admit(ev, nil, noon)
		if ev.Labels["team"] != "payments" || ev.Labels["tier"] != "1" {
			t.Errorf("labels = %v, want team from 20-team.yaml over 10-base.yaml", ev.Labels)
		}
		want := correlate.Admission{Routing: triage.Routing{Priority: "P3", AssignmentGroup: "payments-oncall"},
			Enriched: []string{"base-team", "payments-team"}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Admit = %+v, want %+v", got, want)
		}
	})
	t.Run("duplicate across files", func(t *testing.T) {
		_, err := Load([]string{"testdata/dup/b.yaml", "testdata/dup/a.yaml"})
		want := `testdata/dup/b.yaml:6: rule "drop-watchdog": duplicate name, first defined at testdata/dup/a.yaml:2`
		if err == nil || err.Error() != want {
			t.Errorf("Load = %v, want %s", err, want)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := Load([]string{"testdata/missing.yaml"})
		var errs yamlfile.Errors
		if !errors.As(err, &errs) || len(errs) != 1 || errs[0].File != "testdata/missing.yaml" {
			t.Errorf("Load = %v", err)
		}
	})
	t.Run("errors of every file", func(t *testing.T) {
		_, err := Load([]string{"testdata/broken.yaml", "testdata/dup/*.yaml", "testdata/missing.yaml"})
		var errs yamlfile.Errors
		if !errors.As(err, &errs) {
			t.Fatalf("Load = %v", err)
		}
		files := map[string]bool{}
		for _, e := range errs {
			files[e.File] = true
		}
		if !files["testdata/broken.yaml"] || !files["testdata/dup/b.yaml"] || !files["testdata/missing.yaml"] {
			t.Errorf("Load errors name files %v", slices.Sorted(maps.Keys(files)))
		}
	})
	t.Run("bad glob", func(t *testing.T) {
		if _, err := Load([]string{"testdata/[.yaml"}); err == nil {
			t.Error("Load: no error")
		}
	})
	t.Run("no files", func(t *testing.T) {
		s, err := Load(nil)
		if err != nil || s.Len() != 0 {
			t.Errorf("Load(nil) = %v, %v", s, err)
		}
	})
	t.Run("hash follows content", func(t *testing.T) {
		dir := t.TempDir()
		f := filepath.Join(dir, "r.yaml")
		hash := func(src string) string {
			if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Load([]string{f})
			if err != nil {
				t.Fatal(err)
			}
			return s.Hash()
		}
		a := hash("rules: []\n")
		b := hash("rules: []\n# changed\n")
		if a == "" || a == b || a != hash("rules: []\n") {
			t.Errorf("hashes %q, %q", a, b)
		}
	})
	t.Run("file too large", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "big.yaml")
		if err := os.WriteFile(f, make([]byte, MaxFileBytes+1), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load([]string{f}); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("Load = %v", err)
		}
	})
}

func TestTooManyRules(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range MaxRules + 1 {
		fmt.Fprintf(&b, "- {name: r%d, kind: group, by: [a]}\n", i)
	}
	_, err := Parse("test.yaml", []byte(b.String()))
	if err == nil || err.Error() != "test.yaml:1: 10001 rules: at most 10000 allowed" {
		t.Errorf("Parse = %v", err)
	}
}

// benchRules are 20 rules of every kind that a plain alert does not match.
func benchRules() string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range 6 {
		fmt.Fprintf(&b, "  - {name: enrich-%d, kind: enrich, if: 'alert.labels.service == \"svc-%d\" && ci.attributes.tier == \"1\"', set: {labels: {team: t%d}, priority: P2}}\n", i, i, i)
	}
	for i := range 6 {
		fmt.Fprintf(&b, "  - {name: drop-%d, kind: drop, if: 'alert.labels.alertname in [\"Watchdog%d\", \"Info%d\"] || alert.severity == \"none\"'}\n", i, i, i)
	}
	for i := range 4 {
		fmt.Fprintf(&b, "  - {name: maint-%d, kind: maintenance, ci: [db-%d], schedule: '0 2 * * SUN', duration: 2h, time_zone: Europe/Berlin}\n", i, i)
	}
	for i := range 4 {
		fmt.Fprintf(&b, "  - {name: maint-if-%d, kind: maintenance, if: 'alert.labels.env == \"staging-%d\"', schedule: '0 2 * * *', duration: 1h}\n", i, i)
	}
	return b.String()
}

func BenchmarkAdmit(b *testing.B) {
	s := mustParse(b, benchRules())
	if s.Len() != 20 {
		b.Fatalf("Len = %d", s.Len())
	}
	ev := event("alertname", "HighLatency", "service", "orders", "env", "prod", "instance", "10.0.0.1:9100")
	now := at("2026-06-03T12:00:00Z")
	b.ReportAllocs()
	for b.Loop() {
		if adm := s.Admit(ev, webCI, now); adm.Drop || adm.Enriched != nil {
			b.Fatal(adm)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/example.yaml", "testdata/broken.yaml", "testdata/load/10-base.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(benchRules()))
	f.Add([]byte(admitRules))
	f.Add([]byte("rules:\n  - {name: m, kind: maintenance, ci: [a], schedule: 'TZ=X', duration: 1h}\n"))
	ev := event("alertname", "X", "service", "payments", "n", "5")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			var errs yamlfile.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not yamlfile.Errors: %v", err, err)
			}
			return
		}
		// Whatever loaded must evaluate without panicking.
		e := *ev
		s.Admit(&e, dbOrders, noon)
		s.Correlate(&triage.Alert{Labels: ev.Labels}, dbOrders, &triage.Incident{Labels: ev.Labels})
		s.Group(&triage.Alert{Labels: ev.Labels}, nil)
	})
}

// TestExpressionForms covers ways of reaching the environment that do not
// go through compiled field paths ($env, optional chaining, builtins).
func TestExpressionForms(t *testing.T) {
	s := mustParse(t, `
rules:
  - {name: env-member, kind: drop, if: '$env.alert.labels.x == "1"'}
  - {name: env-index, kind: drop, if: '$env["ci"].id == "web-1"'}
  - {name: optional, kind: drop, if: 'alert?.labels?.y == "2"'}
  - {name: builtins, kind: drop, if: 'any(ci.aliases, # == "w") || "z" in keys(alert.labels)'}
  - {name: matches, kind: drop, if: 'alert.labels.instance matches "^10\\.0\\." && alert.status == "firing"'}
`)
	tests := []struct {
		labels []string
		ci     *triage.CI
		want   string
	}{
		{[]string{"x", "1"}, nil, "env-member"},
		{[]string{"q", "1"}, webCI, "env-index"},
		{[]string{"y", "2"}, nil, "optional"},
		{[]string{"z", ""}, nil, "builtins"},
		{[]string{"q", "1"}, &triage.CI{ID: "c", Aliases: []string{"w"}}, "builtins"},
		{[]string{"instance", "10.0.3.7:9100"}, nil, "matches"},
		{[]string{"instance", "10.1.3.7:9100"}, nil, ""},
	}
	for _, tt := range tests {
		if got := s.Admit(event(tt.labels...), tt.ci, noon); got.Rule != tt.want {
			t.Errorf("labels %v: dropped by %q, want %q", tt.labels, got.Rule, tt.want)
		}
	}
	if s.Errors() != 0 {
		t.Errorf("Errors() = %d", s.Errors())
	}
}

func TestCorrelateKeys(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`alert.labels.cluster == incident.labels.cluster`, []string{"cluster"}},
		{`incident.labels["service.name"] == alert.labels["service.name"] && alert.severity == "critical"`, []string{"service.name"}},
		{`alert.labels.cluster != "" and alert.labels.cluster == incident.labels.cluster && alert.labels.alertname == incident.labels.alertname`, []string{"cluster", "alertname"}},
		{`alert.labels.a == incident.labels.b`, nil},
		{`alert.labels.a == alert.labels.a`, nil},
		{`alert.labels.x == incident.labels.x || alert.labels.y == "1"`, nil},
		{`!(alert.labels.x == incident.labels.x)`, nil},
		{`incident.alert_count > 3`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			s, err := Parse("k.yaml", []byte("rules:\n  - name: r\n    kind: correlate\n    if: '"+strings.ReplaceAll(tc.expr, "'", "''")+"'\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CorrelateKeys(); len(got) != 1 || !slices.Equal(got[0], tc.want) {
				t.Fatalf("CorrelateKeys() = %q, want [%q]", got, tc.want)
			}
		})
	}
	var nilSet *Set
	if nilSet.CorrelateKeys() != nil {
		t.Fatal("a nil set has keys")
	}
}

// A severity a rule sets sticks even when the first notification already
// had it: a later escalation of the same alert does not override the rule.
func TestRuleSeveritySticksWhenEqual(t *testing.T) {
	s := mustParse(t, "\nrules:\n  - name: disk-is-warning\n    kind: enrich\n    if: alert.labels.alertname == \"DiskFilling\"\n    set: {severity: warning}\n")
	for _, first := range []string{"info", "warning"} {
		e := correlate.NewEngine(correlate.Options{ResolveAfter: 5 * time.Minute, ReopenWindow: time.Hour, Rules: s},
			correlate.NewLabelGrouper([]string{"alertname"}, 10*time.Minute))
		m := correlate.NewMemory()
		now := noon
		send := func(sev string) uint64 {
			ev := triage.Event{Fingerprint: "disk-1", Severity: sev, Labels: map[string]string{"alertname": "DiskFilling"}}
			if err := ev.Normalize(now); err != nil {
				t.Fatal(err)
			}
			r := e.Process(&ev, now)
			m.Apply(e.Flush())
			return r.IncidentID
		}
		id := send(first)
		now = now.Add(time.Minute)
		send("critical")
		for _, inc := range m.Incidents() {
			if inc.ID == id && (inc.Severity != "warning" || inc.Priority != "P3") {
				t.Errorf("first notification %s: incident %s %s after a critical repeat, want warning P3", first, inc.Severity, inc.Priority)
			}
		}
	}
}

func TestLogRules(t *testing.T) {
	s := mustParse(t, `
rules:
  - name: oom
    kind: log
    if: level == "error" && message contains "OOMKilled"
    severity: critical
  - name: payments-errors
    kind: log
    if: service == "payments" && level == "error"
`)
	got := s.MatchLog(&LogEnv{Message: "container OOMKilled", Level: "error", Service: "payments", Labels: map[string]string{}})
	if len(got) != 2 || got[0] != (LogMatch{Rule: "oom", Severity: "critical"}) || got[1] != (LogMatch{Rule: "payments-errors", Severity: "warning"}) {
		t.Fatalf("MatchLog = %+v", got)
	}
	if got := s.MatchLog(&LogEnv{Message: "container OOMKilled", Level: "info"}); len(got) != 0 {
		t.Fatalf("info record matched %+v", got)
	}
	_, err := Parse("l.yaml", []byte("rules:\n  - name: a\n    kind: log\n    if: alert.severity == \"x\"\n  - name: b\n    kind: log\n    if: level == \"error\"\n    severity: loud\n  - name: c\n    kind: log\n    if: level == \"error\"\n    set: {priority: P1}\n"))
	for _, want := range []string{"l.yaml:4: rule \"a\": if: unknown name alert", "l.yaml:8: rule \"b\": severity: \"loud\" is not", "l.yaml:12: rule \"c\": set: not valid in a log rule"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
