package correlate

import (
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage"
)

const matrixCMDB = `
cis:
  - {id: host-9, type: host}
  - {id: db-pay, type: database, service: payments, attributes: {tier: "1"}}
  - {id: svc-a, type: application, service: a}
  - {id: svc-b, type: application, service: b}
  - {id: svc-c, type: application, service: c}
relations:
  - {from: svc-a, to: host-9, type: runs_on}
  - {from: svc-b, to: host-9, type: runs_on}
  - {from: svc-c, to: host-9, type: runs_on}
`

func testMatrix() *PriorityMatrix {
	return &PriorityMatrix{
		Tiers:    map[string]string{"1": "high", "2": "medium"},
		Services: map[string]int{"high": 3, "medium": 2},
		Urgency:  map[string]string{"critical": "high", "error": "medium", "warning": "medium"},
		Matrix: map[string]map[string]string{
			"high":   {"high": "P1", "medium": "P2", "low": "P3"},
			"medium": {"high": "P2", "medium": "P3", "low": "P4"},
			"low":    {"high": "P3", "medium": "P4", "low": "P5"},
		},
	}
}

// The impact × urgency matrix: impact grows with the services an incident
// reaches and the tier of its CIs, urgency with severity, and each raise is
// explained on the timeline.
func TestPriorityMatrix(t *testing.T) {
	topo, err := ParseTopology("cmdb.yaml", []byte(matrixCMDB))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Topology: topo, Priority: testMatrix(), ReopenWindow: time.Hour}
	h := &harness{t: t, e: NewEngine(opts, NewCorrelator(topo, CorrelatorOptions{Window: 10 * time.Minute, MaxHops: 3, GroupBy: []string{"alertname"}})),
		m: NewMemory(), now: t0}
	h.fire("alertname", "HostDown", "ci", "host-9", "severity", "warning")
	if inc := h.incident(1); inc.Priority != "P4" || !strings.Contains(inc.PriorityReason, "impact low") {
		t.Fatalf("one host, warning: %s (%s), want P4", inc.Priority, inc.PriorityReason)
	}
	h.fire("alertname", "Errors", "ci", "svc-a", "severity", "warning")
	h.fire("alertname", "Errors", "ci", "svc-b", "severity", "warning")
	inc := h.incident(1)
	if inc.Priority != "P3" || !strings.Contains(inc.PriorityReason, "2 services affected") {
		t.Fatalf("two services: %s (%s), want P3", inc.Priority, inc.PriorityReason)
	}
	h.fire("alertname", "Errors", "ci", "svc-c", "severity", "warning")
	inc = h.incident(1)
	if inc.Priority != "P2" {
		t.Fatalf("three services: %s (%s), want P2", inc.Priority, inc.PriorityReason)
	}
	var changes []string
	for _, e := range inc.Timeline {
		if e.Kind == triage.KindPriorityChanged {
			changes = append(changes, e.Message)
		}
	}
	if len(changes) != 2 || !strings.HasPrefix(changes[0], "priority P4 → P3: impact medium (2 services affected)") ||
		!strings.HasPrefix(changes[1], "priority P3 → P2: impact high (3 services affected)") {
		t.Fatalf("priority changes %q", changes)
	}
	// A tier-1 CI with a critical alert is P1 from the start.
	h.fire("alertname", "Replication", "ci", "db-pay", "severity", "critical")
	if inc := h.incident(2); inc.Priority != "P1" || !strings.Contains(inc.PriorityReason, "db-pay is tier 1") ||
		!strings.Contains(inc.PriorityReason, "severity critical") {
		t.Fatalf("tier 1 critical: %s (%s), want P1", inc.Priority, inc.PriorityReason)
	}
	// An info alert (no urgency mapped) on an unknown CI is low × low.
	h.fire("alertname", "Info", "ci", "nowhere", "severity", "info")
	if inc := h.incident(3); inc.Priority != "P5" {
		t.Fatalf("info: %s (%s), want P5", inc.Priority, inc.PriorityReason)
	}
}

// After a restart the matrix goes on from what the incident had reached,
// also for an incident resolved then reopened within the reopen window.
func TestPriorityMatrixAfterRestore(t *testing.T) {
	topo, err := ParseTopology("cmdb.yaml", []byte(matrixCMDB))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Topology: topo, Priority: testMatrix(), ReopenWindow: time.Hour}
	newEngine := func() *Engine {
		return NewEngine(opts, NewCorrelator(topo, CorrelatorOptions{Window: 10 * time.Minute, MaxHops: 3, GroupBy: []string{"alertname"}}))
	}
	run := func(restart bool) triage.Incident {
		h := &harness{t: t, e: newEngine(), m: NewMemory(), now: t0}
		h.fire("alertname", "HostDown", "ci", "host-9", "severity", "warning")
		h.fire("alertname", "Errors", "ci", "svc-a", "severity", "warning")
		h.resolve("alertname", "HostDown", "ci", "host-9", "severity", "warning")
		h.resolve("alertname", "Errors", "ci", "svc-a", "severity", "warning")
		if restart {
			e := newEngine()
			for _, inc := range h.m.Incidents() {
				e.Restore(inc, inc.Alerts)
			}
			e.SetLastID(1)
			h.e = e
		}
		h.at(time.Minute).fire("alertname", "Errors", "ci", "svc-a", "severity", "warning")
		h.fire("alertname", "Errors", "ci", "svc-b", "severity", "warning")
		return h.incident(1)
	}
	want, got := run(false), run(true)
	if want.Priority != "P3" || got.Priority != want.Priority || got.PriorityReason != want.PriorityReason {
		t.Fatalf("after a restart %s (%s); without one %s (%s)", got.Priority, got.PriorityReason, want.Priority, want.PriorityReason)
	}
}

// A merge that raises the priority says so on the timeline.
func TestPriorityMatrixMerge(t *testing.T) {
	topo, err := ParseTopology("cmdb.yaml", []byte(matrixCMDB))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Topology: topo, Priority: testMatrix(), ReopenWindow: time.Hour}
	h := &harness{t: t, e: NewEngine(opts, NewCorrelator(topo, CorrelatorOptions{Window: 10 * time.Minute, MaxHops: 3, GroupBy: []string{"alertname"}})),
		m: NewMemory(), now: t0}
	h.fire("alertname", "Errors", "ci", "svc-a", "severity", "warning")
	h.fire("alertname", "Latency", "ci", "svc-b", "severity", "warning") // a sibling: its own incident
	h.fire("alertname", "HostDown", "ci", "host-9", "severity", "warning")
	var survivor triage.Incident
	for _, inc := range h.m.Incidents() {
		if inc.MergedInto == nil && len(inc.Merged) > 0 {
			survivor = inc
		}
	}
	if survivor.ID == 0 || survivor.Priority != "P3" {
		t.Fatalf("after the merge: %+v, want one incident at P3 (2 services)", survivor)
	}
	found := false
	for _, e := range survivor.Timeline {
		if e.Kind == triage.KindPriorityChanged && strings.HasPrefix(e.Message, "priority P4 → P3") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no priority_changed entry for the merge: %+v", survivor.Timeline)
	}
}
