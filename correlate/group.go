package correlate

import (
	"cmp"
	"slices"
	"time"

	"github.com/triage-dev/triage"
)

// Assignment is a Grouper's decision for a new alert.
type Assignment struct {
	// IncidentID is the live incident the alert joins; 0 opens a new one.
	IncidentID uint64
	// GroupKey and GroupLabels describe the group a new incident is opened for.
	GroupKey    string
	GroupLabels map[string]string
	// Reason, Rule and Path explain the decision; they are recorded on the alert.
	Reason string
	Rule   string
	Path   []string
	// Merge lists open incidents to merge into IncidentID: the new alert
	// showed they share its cause.
	Merge []uint64
}

// OpenIncidents gives a Grouper read access to the engine's incidents.
type OpenIncidents interface {
	// Incident returns a live incident, or nil. The pointer is valid
	// during the call only.
	Incident(id uint64) *triage.Incident
}

// Grouper decides which incident a new alert belongs to. The Engine owns
// incidents; a Grouper keeps whatever index it needs from the calls below.
// Implementations must be deterministic and do no I/O.
type Grouper interface {
	// Assign is called for each alert seen for the first time.
	Assign(a *triage.Alert, now time.Time, open OpenIncidents) Assignment
	// Join is called when an alert joins a not-resolved incident, and for
	// each alert of a live incident restored after a restart.
	Join(incidentID uint64, a *triage.Alert, now time.Time)
	// Touch is called for each notification of an alert of a not-resolved
	// incident.
	Touch(incidentID uint64, now time.Time)
	// Release is called when an incident resolves or is merged: it accepts
	// no new alerts.
	Release(incidentID uint64)
}

// LabelGrouper is the baseline grouping: alerts with the same values of the
// group-by labels join the newest open incident of that group whose last
// notification is within the window. Its index holds every open incident's
// key and last notification, nothing else, so an engine restored from the
// store rebuilds exactly the same index.
type LabelGrouper struct {
	by     []string
	window time.Duration
	groups map[string][]labelGroup // open incidents by key, ascending id
	keyOf  map[uint64]string
}

type labelGroup struct {
	id   uint64
	last time.Time
}

// NewLabelGrouper groups by the given labels within window.
func NewLabelGrouper(by []string, window time.Duration) *LabelGrouper {
	return &LabelGrouper{
		by:     append([]string(nil), by...),
		window: window,
		groups: make(map[string][]labelGroup),
		keyOf:  make(map[uint64]string),
	}
}

// Key is the group key of an alert, e.g. `alertname="HighLatency",service="orders"`.
func (g *LabelGrouper) Key(labels map[string]string) string { return groupKey(g.by, labels) }

// Assign implements Grouper.
func (g *LabelGrouper) Assign(a *triage.Alert, now time.Time, _ OpenIncidents) Assignment {
	key := g.Key(a.Labels)
	grps := g.groups[key]
	for i := len(grps) - 1; i >= 0; i-- {
		if now.Sub(grps[i].last) <= g.window {
			return Assignment{
				IncidentID: grps[i].id,
				GroupKey:   key,
				Reason:     "same group key {" + key + "} within " + g.window.String() + " of the group's last notification",
			}
		}
	}
	return Assignment{GroupKey: key, GroupLabels: pick(a.Labels, g.by), Reason: "first alert of group {" + key + "}"}
}

// Join implements Grouper.
func (g *LabelGrouper) Join(id uint64, a *triage.Alert, now time.Time) {
	key := a.Joined.GroupKey // set from Assign; saves rebuilding it
	if key == "" {
		key = g.Key(a.Labels)
	}
	grps := g.groups[key]
	i, found := slices.BinarySearchFunc(grps, id, func(lg labelGroup, id uint64) int { return cmp.Compare(lg.id, id) })
	if found {
		if now.After(grps[i].last) {
			grps[i].last = now
		}
		return
	}
	g.groups[key] = slices.Insert(grps, i, labelGroup{id: id, last: now})
	g.keyOf[id] = key
}

// Touch implements Grouper.
func (g *LabelGrouper) Touch(id uint64, now time.Time) {
	key, ok := g.keyOf[id]
	if !ok {
		return
	}
	grps := g.groups[key]
	if i, found := slices.BinarySearchFunc(grps, id, func(lg labelGroup, id uint64) int { return cmp.Compare(lg.id, id) }); found && now.After(grps[i].last) {
		grps[i].last = now
	}
}

// Release implements Grouper.
func (g *LabelGrouper) Release(id uint64) {
	key, ok := g.keyOf[id]
	if !ok {
		return
	}
	delete(g.keyOf, id)
	grps := slices.DeleteFunc(g.groups[key], func(lg labelGroup) bool { return lg.id == id })
	if len(grps) == 0 {
		delete(g.groups, key)
		return
	}
	g.groups[key] = grps
}
