package sla

import (
	"slices"
	"time"
)

// Interval is a pause of a target's clock, [From, To). A zero To means the
// pause has not ended. An interval whose To is not after From is ignored.
type Interval struct {
	From time.Time
	To   time.Time
}

// segment is a stretch of running clock [from, to); to is zero for "still
// running".
type segment struct {
	from, to time.Time
}

// running splits the time from start on into the stretches in which the
// clock runs, given the pauses that had begun by now. A pause that has not
// ended by now (zero To, or To after now) stops the clock for good: when it
// ends is not known yet. paused reports that case; otherwise the last
// segment is open-ended. Pauses that begin after now are ignored.
func running(start time.Time, pauses []Interval, now time.Time) (segs []segment, paused bool) {
	ps := make([]Interval, 0, len(pauses))
	for _, p := range pauses {
		if p.From.After(now) {
			continue
		}
		if !p.To.IsZero() && p.To.After(now) {
			p.To = time.Time{}
		}
		if !p.To.IsZero() && (!p.To.After(p.From) || !p.To.After(start)) {
			continue // empty, or over before the clock started
		}
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b Interval) int { return a.From.Compare(b.From) })
	cur := start
	for _, p := range ps {
		if p.From.After(cur) {
			segs = append(segs, segment{cur, p.From})
		}
		if p.To.IsZero() {
			return segs, true
		}
		if p.To.After(cur) {
			cur = p.To
		}
	}
	return append(segs, segment{from: cur}), false
}

// Elapsed is the open time of cal between start and now during which the
// clock ran: open time inside pauses does not count, overlapping pauses
// count once.
func Elapsed(cal *Calendar, start time.Time, pauses []Interval, now time.Time) time.Duration {
	if !now.After(start) {
		return 0
	}
	segs, _ := running(start, pauses, now)
	return elapsedIn(cal, segs, now)
}

func elapsedIn(cal *Calendar, segs []segment, now time.Time) time.Duration {
	var total time.Duration
	for _, s := range segs {
		to := s.to
		if to.IsZero() || to.After(now) {
			to = now
		}
		total = addSat(total, cal.BusinessDuration(s.from, to))
	}
	return total
}

// DueAt is the instant at which the clock started at start reaches
// budget of open time, shifted by the pauses that had begun by now. While
// the clock is paused at now, the deadline is unknown (ok false) unless the
// budget was already used up before the pause. ok is false as well when
// the deadline lies beyond the calendar's search horizon (see Deadline).
func DueAt(cal *Calendar, start time.Time, pauses []Interval, budget time.Duration, now time.Time) (time.Time, bool) {
	segs, _ := running(start, pauses, now)
	return reach(cal, segs, budget)
}

// reach is the instant at which the running segments accumulate amount.
func reach(cal *Calendar, segs []segment, amount time.Duration) (time.Time, bool) {
	for _, s := range segs {
		if s.to.IsZero() {
			t := cal.Deadline(s.from, amount)
			return t, !t.IsZero()
		}
		d := cal.BusinessDuration(s.from, s.to)
		if d >= amount {
			t := cal.Deadline(s.from, amount)
			return t, !t.IsZero()
		}
		amount -= d
	}
	return time.Time{}, false
}
