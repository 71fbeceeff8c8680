package sla

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// AlwaysOpen is the name of the built-in calendar that is open at every
// instant. No configured calendar may take the name.
const AlwaysOpen = "24x7"

// SearchDays bounds how many calendar days Deadline and NextOpen look ahead
// (about ten years) before they give up and return the zero time.
const SearchDays = 3660

const (
	secondsPerDay = 86400
	// fastMargin keeps the arithmetic wall-clock conversion away from
	// zone transitions: it must exceed any UTC offset, so that the
	// conversion equals time.Date's.
	fastMargin = 2 * secondsPerDay
	// noDay is "no limit" for day numbers; far from overflow when added to.
	noDay = math.MaxInt64 / 4
)

// Range is a range of wall-clock time in a day, in minutes after midnight:
// [From, To) with 0 <= From < To <= 1440.
type Range struct {
	From, To int
}

func (r Range) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", r.From/60, r.From%60, r.To/60, r.To%60)
}

// Calendar is the open time of a team or service: working weekdays,
// working hours on them, holidays, all in one time zone. A Calendar is
// immutable and safe for concurrent use.
type Calendar struct {
	name        string
	loc         *time.Location
	week        [7][]Range       // by time.Weekday
	holidays    map[int64]string // local civil day number (days since 1970-01-01) → name
	holidayDays []int64          // sorted keys of holidays
	weekOpen    int64            // open seconds in a week without holidays or clock changes
	always      bool
}

var alwaysOpen = &Calendar{name: AlwaysOpen, loc: time.UTC, always: true, weekOpen: 7 * secondsPerDay}

// TwentyFourSeven returns the built-in calendar "24x7": open at every
// instant, no holidays.
func TwentyFourSeven() *Calendar { return alwaysOpen }

// Holiday is a closed local date of a calendar.
type Holiday struct {
	Year  int
	Month time.Month
	Day   int
	Name  string
}

// ErrNoOpenTime is returned by NewCalendar for a calendar that is never open.
var ErrNoOpenTime = errors.New("calendar has no working time: name at least one day and one hour range")

// NewCalendar builds a calendar. Hours are the same on every day of days;
// they must not overlap (touching ranges are merged). A calendar without
// any working time is an error (ErrNoOpenTime), so that searches for the
// next opening always end.
func NewCalendar(name string, loc *time.Location, days []time.Weekday, hours []Range, holidays []Holiday) (*Calendar, error) {
	if loc == nil {
		return nil, errors.New("calendar needs a time zone")
	}
	if name == AlwaysOpen {
		return nil, fmt.Errorf("%q is the built-in always-open calendar: choose another name", AlwaysOpen)
	}
	spans, err := normalizeRanges(hours)
	if err != nil {
		return nil, err
	}
	c := &Calendar{name: name, loc: loc, holidays: map[int64]string{}}
	for _, d := range days {
		if d < time.Sunday || d > time.Saturday {
			return nil, fmt.Errorf("weekday %d out of range", d)
		}
		c.week[d] = spans
	}
	for _, w := range c.week {
		for _, s := range w {
			c.weekOpen += int64(s.To-s.From) * 60
		}
	}
	if c.weekOpen == 0 {
		return nil, ErrNoOpenTime
	}
	for _, h := range holidays {
		t := time.Date(h.Year, h.Month, h.Day, 0, 0, 0, 0, time.UTC)
		if t.Year() != h.Year || t.Month() != h.Month || t.Day() != h.Day {
			return nil, fmt.Errorf("holiday %04d-%02d-%02d is not a date", h.Year, h.Month, h.Day)
		}
		d := floorDiv(t.Unix(), secondsPerDay)
		if _, dup := c.holidays[d]; dup {
			return nil, fmt.Errorf("holiday %s listed twice", t.Format(time.DateOnly))
		}
		c.holidays[d] = h.Name
		c.holidayDays = append(c.holidayDays, d)
	}
	slices.Sort(c.holidayDays)
	c.always = c.weekOpen == 7*secondsPerDay && len(c.holidayDays) == 0
	return c, nil
}

// normalizeRanges sorts ranges, merges touching ones and rejects bad or
// overlapping ones.
func normalizeRanges(hours []Range) ([]Range, error) {
	rs := slices.Clone(hours)
	slices.SortFunc(rs, func(a, b Range) int { return a.From - b.From })
	var out []Range
	for _, r := range rs {
		if r.From < 0 || r.To > 24*60 || r.From >= r.To {
			return nil, fmt.Errorf("hour range %s is not within 00:00-24:00 with its start before its end", r)
		}
		if n := len(out); n > 0 {
			switch last := &out[n-1]; {
			case r.From < last.To:
				return nil, fmt.Errorf("hour ranges %s and %s overlap", *last, r)
			case r.From == last.To:
				last.To = r.To
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// Name is the calendar's name.
func (c *Calendar) Name() string { return c.name }

// Location is the calendar's time zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// HolidayAt reports whether t falls on a holiday of the calendar, and its name.
func (c *Calendar) HolidayAt(t time.Time) (string, bool) {
	name, ok := c.holidays[c.dayOf(t)]
	return name, ok
}

// ival is an open interval [a, b) in Unix seconds.
type ival struct{ a, b int64 }

// zoneCache remembers the window of Unix seconds in which the calendar's
// UTC offset is off and far enough from a transition that wall-clock
// arithmetic equals time.Date. Each call has its own, so that a Calendar
// stays safe for concurrent use.
type zoneCache struct {
	ok     bool
	off    int64
	lo, hi int64
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func weekday(d int64) time.Weekday {
	return time.Weekday((d%7 + 7 + 4) % 7) // 1970-01-01 was a Thursday
}

// dayOf is the local civil day number of t.
func (c *Calendar) dayOf(t time.Time) int64 {
	_, off := t.In(c.loc).Zone()
	return floorDiv(t.Unix()+int64(off), secondsPerDay)
}

// instant is the Unix second at which the calendar's wall clock reads
// minute min of civil day d, as time.Date resolves it.
func (c *Calendar) instant(d int64, min int, z *zoneCache) int64 {
	local := d*secondsPerDay + int64(min)*60
	if z.ok {
		if u := local - z.off; u >= z.lo && u < z.hi {
			return u
		}
	}
	y, m, dd := time.Unix(d*secondsPerDay, 0).UTC().Date()
	t := time.Date(y, m, dd, 0, min, 0, 0, c.loc)
	_, off := t.Zone()
	start, end := t.ZoneBounds()
	*z = zoneCache{ok: true, off: int64(off), lo: math.MinInt64, hi: math.MaxInt64}
	if !start.IsZero() {
		z.lo = start.Unix() + fastMargin
	}
	if !end.IsZero() {
		z.hi = end.Unix() - fastMargin
	}
	return t.Unix()
}

// dayIntervals appends the open intervals of civil day d to buf.
func (c *Calendar) dayIntervals(d int64, z *zoneCache, buf []ival) []ival {
	spans := c.week[weekday(d)]
	if len(spans) == 0 {
		return buf
	}
	if _, hol := c.holidays[d]; hol {
		return buf
	}
	// Clamp to the day and keep intervals ordered: on a day whose
	// wall-clock times are skipped or repeated, time.Date may resolve a
	// range to an empty or reversed one.
	prev := c.instant(d, 0, z)
	end := c.instant(d+1, 0, z)
	for _, s := range spans {
		a := max(c.instant(d, s.From, z), prev)
		b := min(c.instant(d, s.To, z), end)
		if b > a {
			buf = append(buf, ival{a, b})
			prev = b
		}
	}
	return buf
}

// fastWeeks is how many whole weeks from civil day d (whose midnight is
// at Unix second lo, just computed through z) have their open time equal
// to weekOpen: no holiday, no clock change near them, and their end no
// later than day limit.
func (c *Calendar) fastWeeks(d, lo, limit int64, z *zoneCache) int64 {
	if !z.ok || lo < z.lo || lo >= z.hi {
		return 0
	}
	e := int64(noDay)
	if z.hi != math.MaxInt64 {
		// Largest day E with E*secondsPerDay - off < hi.
		e = floorDiv(z.hi+z.off-1, secondsPerDay)
	}
	e = min(e, limit, c.nextHoliday(d))
	if e <= d {
		return 0
	}
	return (e - d) / 7
}

// nextHoliday is the first holiday on or after day d, or noDay.
func (c *Calendar) nextHoliday(d int64) int64 {
	i, _ := slices.BinarySearch(c.holidayDays, d)
	if i == len(c.holidayDays) {
		return noDay
	}
	return c.holidayDays[i]
}

// ceilSec is the first whole Unix second at or after t.
func ceilSec(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() != 0 {
		s++
	}
	return s
}

func addSat(a, b time.Duration) time.Duration {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// BusinessDuration is the open time of the calendar in [from, to), zero
// when to is not after from. It saturates at the largest time.Duration.
func (c *Calendar) BusinessDuration(from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	if c.always {
		return to.Sub(from)
	}
	var (
		z     zoneCache
		buf   [8]ival
		total time.Duration
	)
	fromCeil := ceilSec(from)
	d, last := c.dayOf(from)-1, c.dayOf(to)+1
	for d <= last {
		if lo := c.instant(d, 0, &z); lo >= fromCeil {
			// Whole weeks whose end (a midnight) is no later than to.
			limit := floorDiv(to.Unix()+z.off, secondsPerDay)
			if n := c.fastWeeks(d, lo, limit, &z); n > 0 {
				week := time.Duration(c.weekOpen) * time.Second
				if n > math.MaxInt64/int64(week) {
					return math.MaxInt64
				}
				total = addSat(total, time.Duration(n)*week)
				d += 7 * n
				continue
			}
		}
		for _, iv := range c.dayIntervals(d, &z, buf[:0]) {
			a, b := time.Unix(iv.a, 0), time.Unix(iv.b, 0)
			if a.Before(from) {
				a = from
			}
			if b.After(to) {
				b = to
			}
			if b.After(a) {
				total = addSat(total, b.Sub(a))
			}
		}
		d++
	}
	return total
}

// Deadline is the earliest instant at which budget of open time has
// passed since start: counting begins at start, or at the next opening
// when the calendar is closed at start. A budget of zero or less gives
// start. The result is in the calendar's location; it is the zero time
// when the budget is not used up within SearchDays days of start.
func (c *Calendar) Deadline(start time.Time, budget time.Duration) time.Time {
	if budget <= 0 {
		return start.In(c.loc)
	}
	if c.always {
		if budget > SearchDays*24*time.Hour {
			return time.Time{}
		}
		return start.Add(budget).In(c.loc)
	}
	var (
		z   zoneCache
		buf [8]ival
	)
	rem := budget
	startCeil := ceilSec(start)
	d := c.dayOf(start) - 1
	limit := d + 1 + SearchDays
	week := time.Duration(c.weekOpen) * time.Second
	for d <= limit {
		if lo := c.instant(d, 0, &z); lo >= startCeil {
			// Skip whole weeks that use less than what remains.
			if n := min(c.fastWeeks(d, lo, limit, &z), int64((rem-1)/week)); n > 0 {
				rem -= time.Duration(n) * week
				d += 7 * n
				continue
			}
		}
		for _, iv := range c.dayIntervals(d, &z, buf[:0]) {
			a, b := time.Unix(iv.a, 0), time.Unix(iv.b, 0)
			if !b.After(start) {
				continue
			}
			if a.Before(start) {
				a = start
			}
			avail := b.Sub(a)
			if rem <= avail {
				return a.Add(rem).In(c.loc)
			}
			rem -= avail
		}
		d++
	}
	return time.Time{}
}

// IsOpen reports whether the calendar is open at t.
func (c *Calendar) IsOpen(t time.Time) bool {
	if c.always {
		return true
	}
	var (
		z   zoneCache
		buf [8]ival
	)
	d := c.dayOf(t)
	for dd := d - 1; dd <= d+1; dd++ {
		for _, iv := range c.dayIntervals(dd, &z, buf[:0]) {
			if !t.Before(time.Unix(iv.a, 0)) && t.Before(time.Unix(iv.b, 0)) {
				return true
			}
		}
	}
	return false
}

// NextOpen is the earliest instant at or after t at which the calendar is
// open (t itself when it is open), in the calendar's location, or the zero
// time when the calendar stays closed for SearchDays days.
func (c *Calendar) NextOpen(t time.Time) time.Time {
	if c.always {
		return t.In(c.loc)
	}
	var (
		z   zoneCache
		buf [8]ival
	)
	d := c.dayOf(t) - 1
	for limit := d + 1 + SearchDays; d <= limit; d++ {
		for _, iv := range c.dayIntervals(d, &z, buf[:0]) {
			if b := time.Unix(iv.b, 0); b.After(t) {
				if a := time.Unix(iv.a, 0); a.After(t) {
					return a.In(c.loc)
				}
				return t.In(c.loc)
			}
		}
	}
	return time.Time{}
}
