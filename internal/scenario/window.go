package scenario

import (
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
)

// TimeWindowGrouper is the naive baseline of grouping by time alone: every
// new alert whose first notification falls within the window of the first
// alert of the current window joins that window's incident; the first alert
// after it starts a new window. It ignores labels and topology.
type TimeWindowGrouper struct {
	window time.Duration
	// current is the incident of the current window (0: none yet), which
	// started at start. pending is set from an Assign that opened a new
	// window until the engine reports the incident it opened.
	current uint64
	start   time.Time
	pending bool
}

var _ correlate.Grouper = (*TimeWindowGrouper)(nil)

// NewTimeWindowGrouper groups alerts into windows of the given length.
func NewTimeWindowGrouper(window time.Duration) *TimeWindowGrouper {
	return &TimeWindowGrouper{window: window}
}

// Assign implements correlate.Grouper.
func (g *TimeWindowGrouper) Assign(_ *triage.Alert, now time.Time, open correlate.OpenIncidents) correlate.Assignment {
	if g.current != 0 && !g.pending && now.Sub(g.start) <= g.window &&
		(open == nil || open.Incident(g.current) != nil) {
		return correlate.Assignment{IncidentID: g.current,
			Reason: "first notified within " + g.window.String() + " of the window's first alert"}
	}
	g.start, g.pending = now, true
	return correlate.Assignment{Reason: "first alert of a new " + g.window.String() + " window"}
}

// Join implements correlate.Grouper: the first join after an Assign that
// opened a window names the window's incident. An incident restored after a
// restart becomes the window when it is newer than the current one.
func (g *TimeWindowGrouper) Join(id uint64, a *triage.Alert, _ time.Time) {
	switch {
	case g.pending:
		g.current, g.pending = id, false
	case id > g.current:
		g.current, g.start = id, a.FirstSeen
	case id == g.current && a.FirstSeen.Before(g.start):
		g.start = a.FirstSeen
	}
}

// Touch implements correlate.Grouper; repeats do not extend a window.
func (g *TimeWindowGrouper) Touch(uint64, time.Time) {}

// Release implements correlate.Grouper: a resolved or merged incident ends
// its window.
func (g *TimeWindowGrouper) Release(id uint64) {
	if id == g.current {
		g.current = 0
	}
}
