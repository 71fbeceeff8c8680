package sla

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// DefaultWarnAt are the warning thresholds of a policy that names none.
var DefaultWarnAt = []float64{0.75, 0.9}

// Policy is the SLA of the incidents it matches: by priority (P1..P5) and
// service, empty lists matching any. A zero target is not measured.
type Policy struct {
	Name       string
	Priorities []string
	Services   []string
	// Calendar names the calendar both targets are measured in.
	Calendar    string
	Acknowledge time.Duration
	Resolve     time.Duration
	// WarnAt are fractions of a budget, ascending in (0, 1), at which a
	// warning is raised; nil means DefaultWarnAt, empty means none.
	WarnAt []float64
}

func (p *Policy) warnAt() []float64 {
	if p.WarnAt == nil {
		return DefaultWarnAt
	}
	return p.WarnAt
}

// Set is the calendars and policies of a configuration, built by Build.
// It is immutable and safe for concurrent use.
type Set struct {
	calendars map[string]*Calendar
	policies  []Policy
}

// Calendar returns the calendar of that name ("24x7" included), or nil.
func (s *Set) Calendar(name string) *Calendar {
	return s.calendars[name]
}

// Policies returns the policies in file order. The slice is shared: do not
// modify it.
func (s *Set) Policies() []Policy { return s.policies }

// Select returns the policy for an incident of that priority and service,
// or nil when none matches. The most specific match wins: a policy that
// names the service beats one that does not, and then one that names the
// priority beats one that matches any priority; among equals the first in
// file order wins. Priorities compare case-insensitively. The policy is
// shared: do not modify it.
func (s *Set) Select(priority, service string) *Policy {
	best, bestScore := -1, -1
	for i, p := range s.policies {
		score := 0
		if len(p.Services) > 0 {
			if !slices.Contains(p.Services, service) {
				continue
			}
			score += 2
		}
		if len(p.Priorities) > 0 {
			if !slices.ContainsFunc(p.Priorities, func(q string) bool { return strings.EqualFold(q, priority) }) {
				continue
			}
			score++
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return nil
	}
	return &s.policies[best]
}

// Incident is what SLA measurement needs of an incident. Times after the
// evaluation's now are treated as not having happened yet.
type Incident struct {
	OpenedAt time.Time
	// AcknowledgedAt stops the acknowledge clock. Without it, ResolvedAt
	// stops it too: resolving an incident acknowledges it.
	AcknowledgedAt *time.Time
	// ResolvedAt stops the resolve clock.
	ResolvedAt *time.Time
	// Pauses (on hold) stop both clocks.
	Pauses []Interval
}

// Target is a measured SLA target.
type Target string

// The targets, in the order Evaluate reports them.
const (
	Acknowledge Target = "acknowledge"
	Resolve     Target = "resolve"
)

// State is where a target stands.
type State string

// The states of a target.
const (
	// Pending: the clock runs (or is paused) and the deadline has not passed.
	Pending State = "pending"
	// Met: the clock stopped at or before the deadline.
	Met State = "met"
	// Breached: the clock was still running at the deadline.
	Breached State = "breached"
)

// Status is one target of an incident at an instant.
type Status struct {
	Target Target
	State  State
	// Elapsed is the open time counted so far (until the stop, if any).
	Elapsed time.Duration
	Budget  time.Duration
	// Fraction is Elapsed / Budget; above 1 once the budget is overrun.
	Fraction float64
	// Deadline is when the budget runs (or ran) out; zero when unknown
	// because the clock is paused before reaching it, or beyond the search
	// horizon.
	Deadline time.Time
	// StoppedAt is when the clock stopped for good; zero while it runs.
	StoppedAt time.Time
	// Paused reports that the clock is on hold at now.
	Paused bool
	// Warnings are the WarnAt thresholds crossed, ascending.
	Warnings []float64
}

// Kind is what a crossing is.
type Kind string

// The kinds of crossing.
const (
	Warning Kind = "warning"
	Breach  Kind = "breach"
)

// Crossing is a warning threshold or a deadline passed while the clock of
// a target was running.
type Crossing struct {
	Target Target
	Kind   Kind
	// Threshold is the fraction of the budget: a WarnAt value, 1 for a breach.
	Threshold float64
	// At is the exact instant the threshold was reached.
	At time.Time
}

// target is one measured target of an incident with everything that
// decides its crossings.
type target struct {
	name    Target
	budget  time.Duration
	stop    time.Time // zero: not stopped by now
	segs    []segment // as of min(now, stop)
	paused  bool
	elapsed time.Duration
}

func targets(p *Policy, inc Incident, now time.Time) []target {
	if p == nil {
		return nil
	}
	ack := inc.AcknowledgedAt
	if ack == nil {
		ack = inc.ResolvedAt
	}
	var ts []target
	for _, t := range []struct {
		name   Target
		budget time.Duration
		stop   *time.Time
	}{{Acknowledge, p.Acknowledge, ack}, {Resolve, p.Resolve, inc.ResolvedAt}} {
		if t.budget <= 0 {
			continue
		}
		tg := target{name: t.name, budget: t.budget}
		asOf := now
		if t.stop != nil && !t.stop.After(now) {
			tg.stop = *t.stop
			asOf = tg.stop
		}
		tg.segs, tg.paused = running(inc.OpenedAt, inc.Pauses, asOf)
		ts = append(ts, tg)
	}
	return ts
}

// counts reports whether an instant reached by a target's clock is a
// crossing: the clock was still running then.
func (t *target) counts(at time.Time) bool {
	return t.stop.IsZero() || at.Before(t.stop)
}

// thresholds are the warning fractions and the breach (1) of a target
// with the instants they are reached (zero when unknown).
func (t *target) thresholds(cal *Calendar, warnAt []float64) []Crossing {
	cs := make([]Crossing, 0, len(warnAt)+1)
	for _, f := range warnAt {
		if !(f > 0 && f < 1) {
			continue
		}
		at, _ := reach(cal, t.segs, time.Duration(f*float64(t.budget)))
		cs = append(cs, Crossing{Target: t.name, Kind: Warning, Threshold: f, At: at})
	}
	at, _ := reach(cal, t.segs, t.budget)
	return append(cs, Crossing{Target: t.name, Kind: Breach, Threshold: 1, At: at})
}

// Evaluate reports each target of p (acknowledge, then resolve; a zero
// target is left out) for inc at now, measured in cal.
func Evaluate(p *Policy, cal *Calendar, inc Incident, now time.Time) []Status {
	if cal == nil {
		return nil
	}
	var out []Status
	for _, t := range targets(p, inc, now) {
		end := now
		if !t.stop.IsZero() {
			end = t.stop
		}
		st := Status{Target: t.name, Budget: t.budget, StoppedAt: t.stop, State: Pending}
		if end.After(inc.OpenedAt) {
			st.Elapsed = elapsedIn(cal, t.segs, end)
		}
		st.Fraction = float64(st.Elapsed) / float64(t.budget)
		st.Paused = t.stop.IsZero() && t.paused
		for _, c := range t.thresholds(cal, p.warnAt()) {
			reached := !c.At.IsZero() && !c.At.After(now) && t.counts(c.At)
			switch {
			case c.Kind == Breach:
				st.Deadline = c.At
				if reached {
					st.State = Breached
				} else if !t.stop.IsZero() {
					st.State = Met
				}
			case reached:
				st.Warnings = append(st.Warnings, c.Threshold)
			}
		}
		out = append(out, st)
	}
	return out
}

// NextEvent is the first instant after now at which a warning or breach of
// inc would be crossed, for the daemon to set a timer; false when nothing
// is ahead (targets stopped, clocks paused, everything crossed). It knows
// only the pauses and stops of inc, so the daemon recomputes it whenever
// the incident changes (a hold begins or ends, an acknowledgement).
func NextEvent(p *Policy, cal *Calendar, inc Incident, now time.Time) (time.Time, bool) {
	if cal == nil {
		return time.Time{}, false
	}
	var next time.Time
	for _, t := range targets(p, inc, now) {
		for _, c := range t.thresholds(cal, p.warnAt()) {
			if !c.At.IsZero() && c.At.After(now) && t.counts(c.At) && (next.IsZero() || c.At.Before(next)) {
				next = c.At
			}
		}
	}
	return next, !next.IsZero()
}

// Crossings are the warnings and breaches of inc reached in (prev, now],
// ordered by instant, then acknowledge before resolve, then threshold.
// Calling it on each tick with the previous tick's now emits each crossing
// exactly once, provided pauses are recorded as they happen (a pause
// backdated before prev can move instants already reported).
func Crossings(p *Policy, cal *Calendar, inc Incident, prev, now time.Time) []Crossing {
	if cal == nil || !now.After(prev) {
		return nil
	}
	var out []Crossing
	for _, t := range targets(p, inc, now) {
		for _, c := range t.thresholds(cal, p.warnAt()) {
			if !c.At.IsZero() && c.At.After(prev) && !c.At.After(now) && t.counts(c.At) {
				out = append(out, c)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Crossing) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(targetOrder(a.Target), targetOrder(b.Target)),
			cmp.Compare(a.Threshold, b.Threshold))
	})
	return out
}

func targetOrder(t Target) int {
	if t == Acknowledge {
		return 0
	}
	return 1
}
