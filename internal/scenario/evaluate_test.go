package scenario

import (
	"math"
	"strings"
	"testing"

	"github.com/triage-dev/triage"
)

// handScenario has fault-1 (a1, a2, a3 on root ci-a), fault-2 (b1, b2 on
// root ci-b) and noise-1 (n1).
func handScenario() *Scenario {
	return &Scenario{
		Truth: map[string]string{"a1": "fault-1", "a2": "fault-1", "a3": "fault-1", "b1": "fault-2", "b2": "fault-2", "n1": "noise-1"},
		Roots: map[string]string{"fault-1": "ci-a", "fault-2": "ci-b"},
	}
}

func inc(id uint64, rootCause string, fps ...string) triage.Incident {
	i := triage.Incident{ID: id, RootCause: triage.RootCause{CI: rootCause}}
	for _, fp := range fps {
		i.Alerts = append(i.Alerts, triage.Alert{Fingerprint: fp, IncidentID: id})
	}
	return i
}

func merged(i triage.Incident, into uint64) triage.Incident {
	i.MergedInto = &into
	return i
}

func TestEvaluate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		incidents []triage.Incident
		want      Metrics
	}{{
		name:      "perfect",
		incidents: []triage.Incident{inc(1, "ci-a", "a1", "a2", "a3"), inc(2, "ci-b", "b1", "b2"), inc(3, "", "n1")},
		want: Metrics{Alerts: 6, Incidents: 3, Groups: 3, Faults: 2, Precision: 1, Recall: 1, F1: 1, Compression: 0.5,
			RootCauseFaults: 2, RootCauseHits: 2, RootCauseHitRate: 1},
	}, {
		// 4 true pairs (3 of fault-1, 1 of fault-2) among the 15 predicted.
		name:      "all in one",
		incidents: []triage.Incident{inc(1, "ci-a", "a1", "a2", "a3", "b1", "b2", "n1")},
		want: Metrics{Alerts: 6, Incidents: 1, Groups: 3, Faults: 2, Precision: 4.0 / 15, Recall: 1, F1: 8.0 / 19,
			Compression: 1 - 1.0/6, RootCauseFaults: 2, RootCauseHits: 1, RootCauseHitRate: 0.5},
	}, {
		name: "every alert alone",
		incidents: []triage.Incident{inc(1, "ci-a", "a1"), inc(2, "ci-x", "a2"), inc(3, "ci-x", "a3"),
			inc(4, "ci-b", "b1"), inc(5, "ci-x", "b2"), inc(6, "", "n1")},
		want: Metrics{Alerts: 6, Incidents: 6, Groups: 3, Faults: 2, Precision: 1, Recall: 0, F1: 0, Compression: 0,
			RootCauseFaults: 2, RootCauseHits: 2, RootCauseHitRate: 1},
	}, {
		// fault-1 split 2+1 (2 of its 3 pairs lost); its main incident
		// names the wrong CI. fault-2 and the noise share an incident.
		name: "split and merged",
		incidents: []triage.Incident{inc(1, "ci-x", "a1", "a2"), inc(2, "ci-a", "a3"),
			inc(3, "ci-b", "b1", "b2", "n1")},
		want: Metrics{Alerts: 6, Incidents: 3, Groups: 3, Faults: 2, Precision: 2.0 / 4, Recall: 2.0 / 4, F1: 0.5,
			Compression: 0.5, RootCauseFaults: 2, RootCauseHits: 1, RootCauseHitRate: 0.5},
	}, {
		// Incident 2 merged into 3: its alert is listed under both, and
		// only 3 counts. Alerts not in the truth are ignored.
		name: "merged incidents are skipped",
		incidents: []triage.Incident{inc(1, "", "zz"), merged(inc(2, "ci-b", "b1"), 3),
			inc(3, "ci-a", "a1", "a2", "a3", "b1", "zz2"), inc(4, "ci-b", "b2", "n1")},
		// predicted pairs: 6 in incident 3, 1 in 4; true ones: 3.
		want: Metrics{Alerts: 6, Incidents: 2, Groups: 3, Faults: 2, Precision: 3.0 / 7, Recall: 3.0 / 4,
			F1: 2 * (3.0 / 7) * (3.0 / 4) / (3.0/7 + 3.0/4), Compression: 1 - 2.0/6,
			RootCauseFaults: 2, RootCauseHits: 1, RootCauseHitRate: 0.5},
	}, {
		// b2 and n1 are in no incident: they count as alone.
		name:      "missing alerts",
		incidents: []triage.Incident{inc(1, "ci-a", "a1", "a2", "a3"), inc(2, "ci-b", "b1")},
		want: Metrics{Alerts: 4, Missing: 2, Incidents: 2, Groups: 3, Faults: 2, Precision: 1, Recall: 3.0 / 4,
			F1: 2 * 0.75 / 1.75, Compression: 0.5, RootCauseFaults: 2, RootCauseHits: 2, RootCauseHitRate: 1},
	}, {
		// An alert the engine holds twice (a re-fire after its incident
		// was gone) counts in the first incident; the second is still one.
		name: "an alert in two incidents",
		incidents: []triage.Incident{inc(1, "ci-a", "a1", "a2", "a3"), inc(2, "ci-b", "b1", "b2"), inc(3, "", "n1"),
			inc(4, "ci-a", "a1")},
		want: Metrics{Alerts: 6, Incidents: 4, Groups: 3, Faults: 2, Precision: 1, Recall: 1, F1: 1, Compression: 1 - 4.0/6,
			RootCauseFaults: 2, RootCauseHits: 2, RootCauseHitRate: 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := Evaluate(tc.incidents, handScenario())
			if !metricsEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func metricsEqual(a, b Metrics) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return a.Alerts == b.Alerts && a.Missing == b.Missing && a.Incidents == b.Incidents && a.Groups == b.Groups &&
		a.Faults == b.Faults && a.RootCauseFaults == b.RootCauseFaults && a.RootCauseHits == b.RootCauseHits &&
		near(a.Precision, b.Precision) && near(a.Recall, b.Recall) && near(a.F1, b.F1) &&
		near(a.Compression, b.Compression) && near(a.RootCauseHitRate, b.RootCauseHitRate)
}

func TestRootCauseCountsFaultsOfTwoAlertsOrMore(t *testing.T) {
	sc := &Scenario{
		Truth: map[string]string{"a1": "fault-1", "b1": "fault-2", "b2": "fault-2"},
		Roots: map[string]string{"fault-1": "ci-a", "fault-2": "ci-b"},
	}
	// fault-1 has one alert: its wrong root cause does not count.
	m := Evaluate([]triage.Incident{inc(1, "ci-x", "a1"), inc(2, "ci-b", "b1", "b2")}, sc)
	if m.RootCauseFaults != 1 || m.RootCauseHits != 1 {
		t.Errorf("root cause %d/%d, want 1/1", m.RootCauseHits, m.RootCauseFaults)
	}
}

func TestDiagnose(t *testing.T) {
	got := Diagnose([]triage.Incident{inc(1, "ci-x", "a1", "a2"), inc(2, "ci-a", "a3"),
		inc(3, "ci-b", "b1", "b2", "n1")}, handScenario())
	var lines []string
	for _, p := range got {
		lines = append(lines, p.String())
	}
	want := []string{
		`fault-1 (root ci-a), 3 alerts: split over INC-1, INC-2; root cause "ci-x" ()`,
		`fault-2 (root ci-b), 2 alerts: merged with noise-1`,
		`noise-1, 1 alerts: merged with fault-2`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestTable(t *testing.T) {
	out := Table([]Row{{"topology", Metrics{Precision: 1, Recall: 0.5, F1: 2.0 / 3, Alerts: 10}}})
	for _, s := range []string{"precision", "topology", "0.667", "10"} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
	if s := (Metrics{F1: 1}).String(); !strings.Contains(s, "F1 1.000") {
		t.Errorf("String() = %q", s)
	}
}
