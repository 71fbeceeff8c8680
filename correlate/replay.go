package correlate

import (
	"cmp"
	"slices"
	"time"

	"github.com/triage-dev/triage"
)

// Memory keeps the Engine's changes in memory, the way the Store keeps them
// on disk. Replays and tests read incidents from it.
type Memory struct {
	incidents map[uint64]triage.Incident
	alerts    map[uint64]map[string]triage.Alert
	timeline  map[uint64][]triage.TimelineEntry
	seq       uint64
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{
		incidents: make(map[uint64]triage.Incident),
		alerts:    make(map[uint64]map[string]triage.Alert),
		timeline:  make(map[uint64][]triage.TimelineEntry),
	}
}

// Apply records one Flush's changes.
func (m *Memory) Apply(ch Changes) {
	for _, inc := range ch.Incidents {
		m.incidents[inc.ID] = *inc
	}
	for _, a := range ch.Alerts {
		byFP := m.alerts[a.IncidentID]
		if byFP == nil {
			byFP = make(map[string]triage.Alert)
			m.alerts[a.IncidentID] = byFP
		}
		if old, ok := byFP[a.Fingerprint]; ok {
			setState(&old, a)
			byFP[a.Fingerprint] = old
		}
	}
	for _, a := range ch.AlertDetails {
		m.alerts[a.IncidentID][a.Fingerprint] = *a
	}
	for _, t := range ch.Timeline {
		m.seq++
		t.Entry.Seq = m.seq
		m.timeline[t.IncidentID] = append(m.timeline[t.IncidentID], t.Entry)
	}
}

// Incidents returns every incident in id order, in full.
func (m *Memory) Incidents() []triage.Incident {
	out := make([]triage.Incident, 0, len(m.incidents))
	for id, inc := range m.incidents {
		for _, from := range append([]uint64{id}, inc.Merged...) {
			for _, a := range m.alerts[from] {
				a.IncidentID = id
				inc.Alerts = append(inc.Alerts, a)
			}
		}
		sortAlerts(inc.Alerts)
		inc.Explanation = make([]triage.Explanation, len(inc.Alerts))
		for i := range inc.Alerts {
			inc.Explanation[i] = inc.Alerts[i].Joined
		}
		inc.Timeline = append([]triage.TimelineEntry{}, m.timeline[id]...)
		out = append(out, inc)
	}
	slices.SortFunc(out, func(a, b triage.Incident) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Replay runs normalised events through e on a clock taken from the events:
// each event happens at its Time (never earlier than the event before it),
// and timers run as the clock passes them. It returns the final state.
func Replay(e *Engine, events []triage.Event) *Memory {
	m, _ := ReplayStats(e, events)
	return m
}

// Stats count what the events of a replay did.
type Stats struct {
	Events     int            `json:"events"`
	Duplicates int            `json:"duplicates"`
	Ignored    int            `json:"ignored"`
	Dropped    int            `json:"dropped"`
	DroppedBy  map[string]int `json:"dropped_by_rule,omitempty"`
}

// ReplayStats is Replay that also counts what each event did.
func ReplayStats(e *Engine, events []triage.Event) (*Memory, Stats) {
	var st Stats
	m := ReplayEach(e, events, func(_ *triage.Event, r Result) {
		st.Events++
		switch {
		case r.Duplicate:
			st.Duplicates++
		case r.Ignored:
			st.Ignored++
		case r.Dropped:
			st.Dropped++
			if st.DroppedBy == nil {
				st.DroppedBy = make(map[string]int)
			}
			st.DroppedBy[r.Rule]++
		}
	})
	return m, st
}

// ReplayEach is Replay that hands each event and what it did to fn.
func ReplayEach(e *Engine, events []triage.Event, fn func(ev *triage.Event, r Result)) *Memory {
	m := NewMemory()
	var now time.Time
	for i := range events {
		if t := events[i].Time; t.After(now) {
			now = t
		}
		e.Tick(now)
		fn(&events[i], e.Process(&events[i], now))
		m.Apply(e.Flush())
	}
	e.Tick(now)
	m.Apply(e.Flush())
	return m
}

// setState copies the fields of an alert that change with notifications.
func setState(dst, src *triage.Alert) {
	dst.Status = src.Status
	dst.Expired = src.Expired
	dst.Flapping = src.Flapping
	dst.Severity = src.Severity
	dst.Count = src.Count
	dst.StartsAt = src.StartsAt
	dst.EndsAt = src.EndsAt
	dst.LastSeen = src.LastSeen
}
