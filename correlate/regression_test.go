package correlate

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/triage-dev/triage"
)

// Regression tests from the review of the topology change.

func parseTopo(t *testing.T, doc string) *Topology {
	t.Helper()
	topo, err := ParseTopology("cmdb.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func topoHarnessOn(t *testing.T, topo *Topology, co CorrelatorOptions, opts Options) *harness {
	t.Helper()
	if co.Window == 0 {
		co.Window = 10 * time.Minute
	}
	if co.GroupBy == nil {
		co.GroupBy = []string{"alertname", "service"}
	}
	opts.Topology = topo
	if opts.ReopenWindow == 0 {
		opts.ReopenWindow = 30 * time.Minute
	}
	return &harness{t: t, e: NewEngine(opts, NewCorrelator(topo, co)), m: NewMemory(), now: t0}
}

// restoredLive rebuilds the engine as Store.Restore does: live incidents
// only (merged ones left the live set when they merged).
func (h *harness) restoredLive(co CorrelatorOptions) *harness {
	if co.Window == 0 {
		co.Window = 10 * time.Minute
	}
	if co.GroupBy == nil {
		co.GroupBy = []string{"alertname", "service"}
	}
	e := NewEngine(h.e.opts, NewCorrelator(h.e.opts.Topology, co))
	for _, inc := range h.m.Incidents() {
		if inc.MergedInto == nil {
			e.Restore(inc, inc.Alerts)
		}
	}
	return &harness{t: h.t, e: e, m: h.m, now: h.now}
}

func TestReopenedIncidentTakesNewAlerts(t *testing.T) {
	run := func(restart bool) uint64 {
		h := newHarness(t, Options{ResolveAfter: 0, ReopenWindow: time.Hour})
		h.fire("alertname", "X", "service", "s", "instance", "a")
		h.at(time.Minute)
		h.resolve("alertname", "X", "service", "s", "instance", "a")
		h.at(2 * time.Minute)
		h.fire("alertname", "X", "service", "s", "instance", "a") // reopens INC-1
		if restart {
			h = h.restored()
		}
		h.at(3 * time.Minute)
		return h.fire("alertname", "X", "service", "s", "instance", "b").IncidentID
	}
	if live, after := run(false), run(true); live != after || live != 1 {
		t.Fatalf("joins INC-%d live, INC-%d after a restart; want INC-1 both times", live, after)
	}
}

func TestReopenedIncidentTakesNewAlertsByTopology(t *testing.T) {
	run := func(restart bool) uint64 {
		h := newTopoHarness(t, CorrelatorOptions{MaxHops: 3}, Options{ReopenWindow: time.Hour})
		h.e.opts.ResolveAfter = 0
		h.fire("alertname", "PostgresDown", "ci", "db-orders")
		h.at(time.Minute)
		h.resolve("alertname", "PostgresDown", "ci", "db-orders")
		h.at(2 * time.Minute)
		h.fire("alertname", "PostgresDown", "ci", "db-orders")
		if restart {
			h = h.restoredLive(CorrelatorOptions{MaxHops: 3})
		}
		h.at(3 * time.Minute)
		return h.fire("alertname", "HighErrorRate", "ci", "svc-orders").IncidentID
	}
	if live, after := run(false), run(true); live != after || live != 1 {
		t.Fatalf("INC-%d live, INC-%d after a restart; want INC-1", live, after)
	}
}

type priorityRules struct{}

func (priorityRules) Admit(ev *triage.Event, ci *triage.CI, now time.Time) Admission {
	switch ev.Labels["alertname"] {
	case "LowPrio":
		return Admission{Routing: triage.Routing{Priority: "P4"}, Enriched: []string{"low"}}
	case "Noisy":
		ev.Severity = "info"
		return Admission{Enriched: []string{"noisy-is-info"}}
	}
	return Admission{}
}
func (priorityRules) Correlate(*triage.Alert, *triage.CI, *triage.Incident) (string, bool) {
	return "", false
}
func (priorityRules) Group(*triage.Alert, *triage.CI) (GroupRule, bool) { return GroupRule{}, false }
func (priorityRules) CorrelateKeys() [][]string                         { return nil }

func priorityHarness(t *testing.T) *harness {
	return &harness{t: t, e: NewEngine(Options{ResolveAfter: 5 * time.Minute, ReopenWindow: time.Hour, Rules: priorityRules{}},
		NewLabelGrouper([]string{"service"}, 10*time.Minute)), m: NewMemory(), now: t0}
}

func TestRulePriorityIsTheAlertsNotTheIncidents(t *testing.T) {
	h := priorityHarness(t)
	low := h.fire("alertname", "LowPrio", "service", "s", "severity", "critical").IncidentID
	if p := h.incident(low).Priority; p != "P4" {
		t.Fatalf("an incident of one critical alert a rule made P4 is %s", p)
	}
	h.at(time.Minute)
	h.fire("alertname", "DBDown", "service", "s", "severity", "critical")
	if p := h.incident(low).Priority; p != "P1" {
		t.Fatalf("a critical alert without a rule priority joined: incident is %s, want P1 (the highest of its alerts)", p)
	}
	h2 := priorityHarness(t)
	id := h2.fire("alertname", "DBDown", "service", "s", "severity", "critical").IncidentID
	h2.at(time.Minute)
	h2.fire("alertname", "LowPrio", "service", "s", "severity", "info")
	if p := h2.incident(id).Priority; p != "P1" {
		t.Fatalf("a P4-routed alert joining a critical incident made it %s", p)
	}
}

func TestRuleSeveritySticksOverRepeats(t *testing.T) {
	h := priorityHarness(t)
	id := h.fire("alertname", "Noisy", "service", "s", "severity", "critical").IncidentID
	h.at(time.Minute)
	h.fire("alertname", "Noisy", "service", "s", "severity", "critical")
	if inc := h.incident(id); inc.Severity != "info" || inc.Priority != "P4" {
		t.Fatalf("severity %s priority %s after a repeat; the rule set info (P4)", inc.Severity, inc.Priority)
	}
}

func TestRulesDoNotChangeTheCallersEvent(t *testing.T) {
	h := priorityHarness(t)
	ev := triage.Event{Labels: map[string]string{"alertname": "Noisy", "severity": "critical"}}
	if err := ev.Normalize(t0); err != nil {
		t.Fatal(err)
	}
	h.e.Process(&ev, t0)
	if ev.Severity != "critical" {
		t.Fatalf("the event's severity became %q: the event log must keep what was sent", ev.Severity)
	}
}

func TestCandidateAtItsNearestDistance(t *testing.T) {
	topo := parseTopo(t, "cis: [{id: a}, {id: m}, {id: r}, {id: q}]\nrelations:\n"+
		"  - {from: a, to: m, type: depends_on}\n  - {from: m, to: r, type: depends_on}\n  - {from: r, to: q, type: runs_on}\n")
	h := topoHarnessOn(t, topo, CorrelatorOptions{MaxHops: 2}, Options{ResolveAfter: 5 * time.Minute})
	h.fire("alertname", "A", "ci", "a") // INC-1
	h.at(time.Minute)
	h.fire("alertname", "Q", "ci", "q") // a→q is 3 hops: INC-2
	h.at(2 * time.Minute)
	h.fire("alertname", "M", "ci", "m") // joins INC-1 (a depends on m)
	h.at(3 * time.Minute)
	// r: INC-1's m depends on it (1 hop) and a (2 hops); r depends on INC-2's q.
	inc := h.incident(h.fire("alertname", "R", "ci", "r").IncidentID)
	var path []string
	for _, a := range inc.Alerts {
		if a.Labels["alertname"] == "R" {
			path = a.Joined.Path
		}
	}
	if inc.ID != 1 || !slices.Equal(path, []string{"m", "depends_on", "r"}) {
		t.Fatalf("joined INC-%d by %v; want INC-1 by its nearest CI: m depends_on r", inc.ID, path)
	}
	// r links its cause (q, INC-2) and its dependents (INC-1): one cascade.
	if !slices.Equal(inc.Merged, []uint64{2}) {
		t.Fatalf("merged %v, want [2]", inc.Merged)
	}
}

func TestRootCauseSameAfterRestore(t *testing.T) {
	topo := parseTopo(t, "cis: [{id: a}, {id: m}, {id: b}]\nrelations:\n  - {from: a, to: m, type: depends_on}\n  - {from: m, to: b, type: depends_on}\n")
	co := CorrelatorOptions{MaxHops: 1}
	run := func(restart bool) string {
		h := topoHarnessOn(t, topo, co, Options{ResolveAfter: 5 * time.Minute})
		h.fire("alertname", "M", "ci", "m")
		h.at(time.Minute)
		h.fire("alertname", "B", "ci", "b")
		h.at(2 * time.Minute)
		h.fire("alertname", "A", "ci", "a") // m and b each have one dependent; m came first
		h.at(3 * time.Minute)
		h.resolve("alertname", "M", "ci", "m")
		h.at(4 * time.Minute)
		h.fire("alertname", "M", "ci", "m")
		if restart {
			h = h.restoredLive(co)
		}
		h.at(5 * time.Minute)
		h.fire("alertname", "A2", "ci", "a")
		return h.incident(1).RootCause.CI
	}
	if live, after := run(false), run(true); live != after {
		t.Fatalf("root cause %s live, %s after a restart", live, after)
	}
}

func TestFlappingSettlesAfterRestore(t *testing.T) {
	run := func(restart bool) bool {
		h := newHarness(t, Options{ResolveAfter: 5 * time.Minute, ReopenWindow: time.Hour, Flapping: Flapping{Changes: 2, Window: 10 * time.Minute}})
		x := []string{"alertname", "X", "service", "s"}
		h.fire(x...)
		h.at(time.Minute)
		h.resolve(x...)
		h.at(2 * time.Minute)
		h.fire(x...) // flapping
		for m := 3; m <= 30; m++ {
			if restart && m == 5 {
				h = h.restored()
			}
			h.at(time.Duration(m) * time.Minute)
			h.fire(x...)
		}
		return h.incident(1).Alerts[0].Flapping
	}
	if live, after := run(false), run(true); live || after {
		t.Fatalf("flapping %v live, %v after a restart; want settled both times 28m after its last change", live, after)
	}
}

// keyedRules has one correlate rule, alert.labels.cluster ==
// incident.labels.cluster && alert.labels.team == incident.labels.team;
// scan reports it without a key, so the correlator scans instead of using
// its index.
type keyedRules struct{ scan bool }

func (keyedRules) Admit(*triage.Event, *triage.CI, time.Time) Admission { return Admission{} }
func (keyedRules) Correlate(a *triage.Alert, _ *triage.CI, inc *triage.Incident) (string, bool) {
	ok := a.Labels["cluster"] == inc.Labels["cluster"] && a.Labels["team"] == inc.Labels["team"]
	return "same-cluster-team", ok
}
func (keyedRules) Group(*triage.Alert, *triage.CI) (GroupRule, bool) { return GroupRule{}, false }
func (k keyedRules) CorrelateKeys() [][]string {
	if k.scan {
		return [][]string{nil}
	}
	return [][]string{{"cluster", "team"}}
}

// The key index is an optimisation: on any stream it must give exactly the
// incidents a scan gives, including incidents whose common cluster label
// went away as alerts of other clusters joined them by topology.
func TestCorrelateKeyIndexEqualsScan(t *testing.T) {
	topo := testTopology(t)
	cis := []string{"", "db-orders", "svc-orders", "host-1", "sw-a", "cache-orders", "svc-web", "db-users", "svc-users"}
	clusters := []string{"", "eu", "us"}
	teams := []string{"", "dba", "web"}
	run := func(scan bool) []triage.Incident {
		rules := keyedRules{scan: scan}
		h := topoHarnessOn(t, topo, CorrelatorOptions{MaxHops: 2, Rules: rules}, Options{ResolveAfter: 2 * time.Minute, Rules: rules})
		rnd := uint64(42)
		next := func(n int) int { rnd = rnd*6364136223846793005 + 1442695040888963407; return int(rnd>>33) % n }
		for i := 0; i < 600; i++ {
			h.at(time.Duration(i) * 7 * time.Second)
			labels := []string{"alertname", fmt.Sprintf("A%d", next(12))}
			if ci := cis[next(len(cis))]; ci != "" {
				labels = append(labels, "ci", ci)
			}
			if c := clusters[next(len(clusters))]; c != "" {
				labels = append(labels, "cluster", c)
			}
			if tm := teams[next(len(teams))]; tm != "" {
				labels = append(labels, "team", tm)
			}
			if next(4) == 0 {
				h.resolve(labels...)
			} else {
				h.fire(labels...)
			}
		}
		return h.m.Incidents()
	}
	indexed, scanned := run(false), run(true)
	if len(indexed) != len(scanned) {
		t.Fatalf("%d incidents with the index, %d scanning", len(indexed), len(scanned))
	}
	byRule := 0
	for i := range indexed {
		a, b := indexed[i], scanned[i]
		if a.AlertCount != b.AlertCount || a.Status != b.Status || a.RootCause != b.RootCause || !slices.Equal(a.Merged, b.Merged) {
			t.Fatalf("incident %d differs:\nindexed %+v\nscanned %+v", i+1, a, b)
		}
		for j := range a.Alerts {
			if a.Alerts[j].Fingerprint != b.Alerts[j].Fingerprint || a.Alerts[j].Joined.Rule != b.Alerts[j].Joined.Rule {
				t.Fatalf("incident %d alert %d differs", i+1, j)
			}
			if a.Alerts[j].Joined.Rule != "" {
				byRule++
			}
		}
	}
	if byRule < 20 {
		t.Fatalf("only %d alerts joined by the rule: the stream does not exercise it", byRule)
	}
}

type groupByTeam struct{}

func (groupByTeam) Admit(*triage.Event, *triage.CI, time.Time) Admission { return Admission{} }
func (groupByTeam) Correlate(*triage.Alert, *triage.CI, *triage.Incident) (string, bool) {
	return "", false
}
func (groupByTeam) Group(*triage.Alert, *triage.CI) (GroupRule, bool) {
	return GroupRule{Name: "by-team", By: []string{"team"}}, true
}
func (groupByTeam) CorrelateKeys() [][]string { return nil }

// A group key an incident got through a merge keeps the incident's last
// notification, live and after a restart or a reload alike.
func TestGroupWindowSameAfterRestoreAndReload(t *testing.T) {
	topo := parseTopo(t, "cis: [{id: a}, {id: b}, {id: hub}, {id: c}]\nrelations:\n"+
		"  - {from: a, to: hub, type: depends_on}\n  - {from: b, to: hub, type: depends_on}\n")
	co := CorrelatorOptions{MaxHops: 1, Window: 10 * time.Minute, GroupBy: []string{"alertname", "service"}, Rules: groupByTeam{}}
	run := func(mode string) uint64 {
		h := topoHarnessOn(t, topo, co, Options{ResolveAfter: time.Hour, Rules: groupByTeam{}})
		h.fire("alertname", "A", "ci", "a", "team", "x") // INC-1, key team="x"
		h.at(time.Minute)
		h.fire("alertname", "B", "ci", "b", "team", "y") // INC-2, key team="y"
		h.at(2 * time.Minute)
		h.fire("alertname", "H", "ci", "hub", "team", "z") // INC-2 merges into INC-1
		h.at(10 * time.Minute)
		h.fire("alertname", "A", "ci", "a", "team", "x") // INC-1 notified
		switch mode {
		case "restart":
			h = h.restoredLive(co)
			h.e.SetLastID(2)
		case "reload":
			h.e.Reconfigure(topo, groupByTeam{}, NewCorrelator(topo, co))
		}
		h.at(15 * time.Minute)
		return h.fire("alertname", "C", "ci", "c", "team", "y").IncidentID
	}
	live := run("live")
	for _, mode := range []string{"restart", "reload"} {
		if got := run(mode); got != live {
			t.Errorf("the same alert joins INC-%d live but INC-%d after a %s", live, got, mode)
		}
	}
}

// Flap timing uses receive times live; a restart must not switch to the
// sender's starts_at (earlier by the rule's for: duration).
func TestFlappingRestoreUsesReceiveTime(t *testing.T) {
	run := func(restart bool) triage.IncidentStatus {
		h := newHarness(t, Options{ResolveAfter: 0, ReopenWindow: time.Hour, Flapping: Flapping{Changes: 2, Window: 10 * time.Minute}})
		send := func(status triage.AlertStatus, start, end time.Time) {
			ev := triage.Event{Status: status, Labels: map[string]string{"alertname": "X", "service": "s"}, StartsAt: start, EndsAt: end}
			if err := ev.Normalize(h.now); err != nil {
				t.Fatal(err)
			}
			h.e.Tick(h.now)
			h.e.Process(&ev, h.now)
			h.m.Apply(h.e.Flush())
		}
		send(triage.AlertFiring, t0, time.Time{})
		h.at(6 * time.Minute)
		send(triage.AlertResolved, t0, t0.Add(6*time.Minute))
		h.at(12 * time.Minute)
		send(triage.AlertFiring, t0.Add(7*time.Minute), time.Time{}) // for: 5m
		if !h.incident(1).Alerts[0].Flapping {
			t.Fatal("not flapping")
		}
		if restart {
			h.at(13 * time.Minute)
			h = h.restored()
		}
		h.at(18 * time.Minute)
		send(triage.AlertResolved, t0.Add(7*time.Minute), t0.Add(18*time.Minute))
		return h.incident(1).Status
	}
	if live, after := run(false), run(true); live != after {
		t.Fatalf("incident %s live, %s after a restart", live, after)
	}
}

// The scan cap counts incidents rules were tried against, not quiet ones
// skipped: scan and index agree.
func TestMaxRuleScanCountsOnlyTried(t *testing.T) {
	for _, scan := range []bool{true, false} {
		rules := keyedRules{scan: scan}
		h := topoHarnessOn(t, testTopology(t), CorrelatorOptions{Rules: rules, MaxRuleScan: 2}, Options{ResolveAfter: time.Hour, Rules: rules})
		h.fire("alertname", "A", "cluster", "eu", "team", "dba") // INC-1
		h.at(time.Minute)
		h.fire("alertname", "B", "cluster", "us", "team", "dba") // INC-2
		h.at(2 * time.Minute)
		h.fire("alertname", "C", "cluster", "us", "team", "dba")
		h.fire("alertname", "D", "team", "dba")                  // INC-3
		h.fire("alertname", "E", "team", "dba", "cluster", "ap") // INC-4
		h.at(15 * time.Minute)
		h.fire("alertname", "A", "cluster", "eu", "team", "dba")
		h.at(16 * time.Minute)
		if id := h.fire("alertname", "F", "cluster", "eu", "team", "dba").IncidentID; id != 1 {
			t.Errorf("scan=%v: joined INC-%d, want INC-1", scan, id)
		}
	}
}
