package scenario

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/triage-dev/triage"
)

// Metrics score an engine's incidents against a scenario's truth.
type Metrics struct {
	// Alerts is the number of unique alerts (fingerprints) of the truth
	// that the incidents hold; Missing is those of the truth they do not
	// hold (each counts as an incident of its own in the pairs).
	Alerts, Missing int
	// Incidents is the number of incidents (not merged into another) that
	// hold an alert of the truth.
	Incidents int
	// Groups and Faults count the ground-truth groups and faults among
	// those alerts.
	Groups, Faults int

	// Pairwise scores over pairs of alerts: a pair is predicted together
	// when one incident holds both, and truly together when both belong to
	// one ground-truth group. An empty denominator scores 1.
	Precision, Recall, F1 float64
	// Compression is 1 - Incidents/Alerts.
	Compression float64

	// RootCauseFaults is the number of faults with at least two alerts;
	// RootCauseHits those whose main incident (the one holding most of the
	// fault's alerts, the lowest id on a tie) names the fault's root CI as
	// its root cause.
	RootCauseFaults, RootCauseHits int
	RootCauseHitRate               float64
}

// String is a one-line summary of m.
func (m Metrics) String() string {
	return fmt.Sprintf("precision %.3f recall %.3f F1 %.3f compression %.3f root-cause %.3f (%d/%d); %d alerts, %d incidents, %d faults, %d groups",
		m.Precision, m.Recall, m.F1, m.Compression, m.RootCauseHitRate, m.RootCauseHits, m.RootCauseFaults,
		m.Alerts, m.Incidents, m.Faults, m.Groups)
}

// Row is one line of a quality table.
type Row struct {
	Name    string
	Metrics Metrics
}

// Table formats rows as an aligned text table.
func Table(rows []Row) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "run\tprecision\trecall\tF1\tcompression\tRC hit\talerts\tincidents\tfaults\t")
	for _, r := range rows {
		m := r.Metrics
		fmt.Fprintf(w, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%d\t%d\t\n",
			r.Name, m.Precision, m.Recall, m.F1, m.Compression, m.RootCauseHitRate, m.Alerts, m.Incidents, m.Faults)
	}
	w.Flush()
	return b.String()
}

// assignment is where each alert of the truth ended up.
type assignment struct {
	incidentOf map[string]uint64 // fingerprint → incident; absent: missing
	incidents  map[uint64]*triage.Incident
	holding    int // incidents holding an alert of the truth
}

// assign places each alert of the truth in the first incident (lowest id,
// not merged into another) that lists it. An alert the engine put in two
// incidents (it fired again after the first was gone) counts in the first;
// the second still counts as an incident.
func assign(incidents []triage.Incident, sc *Scenario) assignment {
	a := assignment{incidentOf: make(map[string]uint64), incidents: make(map[uint64]*triage.Incident)}
	order := make([]int, 0, len(incidents))
	for i := range incidents {
		if incidents[i].MergedInto == nil {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(incidents[x].ID, incidents[y].ID) })
	for _, i := range order {
		inc := &incidents[i]
		holds := false
		for _, al := range inc.Alerts {
			if _, ok := sc.Truth[al.Fingerprint]; !ok {
				continue
			}
			holds = true
			if _, ok := a.incidentOf[al.Fingerprint]; !ok {
				a.incidentOf[al.Fingerprint] = inc.ID
			}
		}
		if holds {
			a.incidents[inc.ID] = inc
			a.holding++
		}
	}
	return a
}

// Evaluate scores incidents (as an engine or replay made them, with their
// alerts) against sc's truth. Incidents merged into another are skipped:
// their alerts are listed under the one they merged into. Alerts that are
// not in the truth are ignored.
func Evaluate(incidents []triage.Incident, sc *Scenario) Metrics {
	a := assign(incidents, sc)
	m := Metrics{Incidents: a.holding}

	type cell struct {
		inc   uint64
		group string
	}
	predicted := make(map[uint64]int)
	truly := make(map[string]int)
	both := make(map[cell]int)
	for fp, group := range sc.Truth {
		truly[group]++
		id, ok := a.incidentOf[fp]
		if !ok {
			m.Missing++ // alone: adds no predicted pair
			continue
		}
		m.Alerts++
		predicted[id]++
		both[cell{id, group}]++
	}
	pairs := func(n int) float64 { return float64(n) * float64(n-1) / 2 }
	var tp, pp, ap float64
	for _, n := range both {
		tp += pairs(n)
	}
	for _, n := range predicted {
		pp += pairs(n)
	}
	for _, n := range truly {
		ap += pairs(n)
	}
	m.Precision, m.Recall = ratio(tp, pp), ratio(tp, ap)
	if m.Precision+m.Recall > 0 {
		m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
	}
	if m.Alerts > 0 {
		m.Compression = 1 - float64(m.Incidents)/float64(m.Alerts)
	}
	m.Groups = len(truly)
	for g := range truly {
		if _, ok := sc.Roots[g]; ok {
			m.Faults++
		}
	}

	for _, f := range groupViews(a, sc, true) {
		if f.alerts < 2 {
			continue
		}
		m.RootCauseFaults++
		if f.main != nil && f.main.RootCause.CI == f.root {
			m.RootCauseHits++
		}
	}
	m.RootCauseHitRate = ratio(float64(m.RootCauseHits), float64(m.RootCauseFaults))
	return m
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 1
	}
	return a / b
}

// groupView is how the incidents hold one ground-truth group.
type groupView struct {
	id, root string // root: the fault's root CI, empty for noise and flaps
	alerts   int
	// byIncident counts the group's alerts per incident; missing ones are
	// under 0.
	byIncident map[uint64]int
	main       *triage.Incident
}

// groupViews lists every ground-truth group (faultsOnly: every fault) in
// group order.
func groupViews(a assignment, sc *Scenario, faultsOnly bool) []groupView {
	views := make(map[string]*groupView)
	for fp, g := range sc.Truth {
		root, ok := sc.Roots[g]
		if faultsOnly && !ok {
			continue
		}
		f := views[g]
		if f == nil {
			f = &groupView{id: g, root: root, byIncident: make(map[uint64]int)}
			views[g] = f
		}
		f.alerts++
		f.byIncident[a.incidentOf[fp]]++
	}
	ids := make([]string, 0, len(views))
	for id := range views {
		ids = append(ids, id)
	}
	sortGroupIDs(ids)
	out := make([]groupView, 0, len(ids))
	for _, id := range ids {
		f := views[id]
		var best uint64
		bestN := 0
		for inc, n := range f.byIncident {
			if inc != 0 && (n > bestN || n == bestN && inc < best) {
				best, bestN = inc, n
			}
		}
		f.main = a.incidents[best]
		out = append(out, *f)
	}
	return out
}

// Problem describes one ground-truth group the incidents got wrong.
type Problem struct {
	// Group is the ground-truth group; Root its root CI when it is a fault.
	Group, Root string
	Alerts      int
	// Split lists the incidents holding the group's alerts, main first,
	// when there is more than one (0 stands for alerts in no incident).
	Split []uint64
	// MergedWith lists the other ground-truth groups whose alerts share the
	// group's main incident.
	MergedWith []string
	// RootCause is what the main incident of a fault of two or more alerts
	// names when it is not Root.
	RootCause       string
	RootCauseReason string
}

func (p Problem) String() string {
	var parts []string
	if len(p.Split) > 0 {
		ids := make([]string, len(p.Split))
		for i, id := range p.Split {
			ids[i] = triage.IncidentKey(id)
			if id == 0 {
				ids[i] = "none"
			}
		}
		parts = append(parts, "split over "+strings.Join(ids, ", "))
	}
	if len(p.MergedWith) > 0 {
		parts = append(parts, "merged with "+strings.Join(p.MergedWith, ", "))
	}
	if p.RootCause != "" || p.RootCauseReason != "" {
		parts = append(parts, fmt.Sprintf("root cause %q (%s)", p.RootCause, p.RootCauseReason))
	}
	what := p.Group
	if p.Root != "" {
		what += " (root " + p.Root + ")"
	}
	return fmt.Sprintf("%s, %d alerts: %s", what, p.Alerts, strings.Join(parts, "; "))
}

// Diagnose lists the ground-truth groups the incidents split, merged with
// other groups, or (faults of two or more alerts) named the wrong root
// cause for, in group order.
func Diagnose(incidents []triage.Incident, sc *Scenario) []Problem {
	a := assign(incidents, sc)
	groupsIn := make(map[uint64]map[string]bool)
	for fp, id := range a.incidentOf {
		if groupsIn[id] == nil {
			groupsIn[id] = make(map[string]bool)
		}
		groupsIn[id][sc.Truth[fp]] = true
	}
	var out []Problem
	for _, f := range groupViews(a, sc, false) {
		p := Problem{Group: f.id, Root: f.root, Alerts: f.alerts}
		if len(f.byIncident) > 1 {
			var main uint64
			if f.main != nil {
				main = f.main.ID
				p.Split = append(p.Split, main)
			}
			var rest []uint64
			for id := range f.byIncident {
				if id != main {
					rest = append(rest, id)
				}
			}
			slices.Sort(rest)
			p.Split = append(p.Split, rest...)
		}
		if f.main != nil {
			for g := range groupsIn[f.main.ID] {
				if g != f.id {
					p.MergedWith = append(p.MergedWith, g)
				}
			}
			sortGroupIDs(p.MergedWith)
			if f.root != "" && f.alerts >= 2 && f.main.RootCause.CI != f.root {
				p.RootCause, p.RootCauseReason = f.main.RootCause.CI, f.main.RootCause.Reason
			}
		}
		if len(p.Split) > 0 || len(p.MergedWith) > 0 || p.RootCause != "" || p.RootCauseReason != "" {
			out = append(out, p)
		}
	}
	return out
}

// Median is the field-by-field median of ms (the mean of the middle two
// for an even count), for summarising runs over several seeds.
func Median(ms []Metrics) Metrics {
	if len(ms) == 0 {
		return Metrics{}
	}
	f := func(get func(Metrics) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = get(m)
		}
		slices.Sort(v)
		n := len(v)
		if n%2 == 1 {
			return v[n/2]
		}
		return (v[n/2-1] + v[n/2]) / 2
	}
	i := func(get func(Metrics) int) int {
		return int(f(func(m Metrics) float64 { return float64(get(m)) }) + 0.5)
	}
	return Metrics{
		Alerts:           i(func(m Metrics) int { return m.Alerts }),
		Missing:          i(func(m Metrics) int { return m.Missing }),
		Incidents:        i(func(m Metrics) int { return m.Incidents }),
		Groups:           i(func(m Metrics) int { return m.Groups }),
		Faults:           i(func(m Metrics) int { return m.Faults }),
		Precision:        f(func(m Metrics) float64 { return m.Precision }),
		Recall:           f(func(m Metrics) float64 { return m.Recall }),
		F1:               f(func(m Metrics) float64 { return m.F1 }),
		Compression:      f(func(m Metrics) float64 { return m.Compression }),
		RootCauseFaults:  i(func(m Metrics) int { return m.RootCauseFaults }),
		RootCauseHits:    i(func(m Metrics) int { return m.RootCauseHits }),
		RootCauseHitRate: f(func(m Metrics) float64 { return m.RootCauseHitRate }),
	}
}
