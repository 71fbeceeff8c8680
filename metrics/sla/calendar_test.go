package sla

import (
	"math/rand"
	"testing"
	"time"
)

// newCal builds a calendar from its config form, failing the test on error.
func newCal(t testing.TB, tz string, days, hours []string, holidays ...string) *Calendar {
	t.Helper()
	cc := CalendarConfig{Name: "test", TimeZone: tz, Days: days, Hours: hours}
	for _, h := range holidays {
		cc.Holidays = append(cc.Holidays, HolidayConfig{Date: h})
	}
	s, err := Build(Config{Calendars: []CalendarConfig{cc}})
	if err != nil {
		t.Fatal(err)
	}
	return s.Calendar("test")
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// at parses "2006-01-02 15:04" (or with seconds and fraction) in loc.
func at(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	layout := "2006-01-02 15:04"
	if len(s) > len(layout) {
		layout = "2006-01-02 15:04:05.999999999"
	}
	v, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var (
	weekdays = []string{"mon-fri"}
	allWeek  = []string{"mon-sun"}
	nineFive = []string{"09:00-17:00"}
	allDay   = []string{"00:00-24:00"}
)

func TestBusinessDuration(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	ny := mustLoc(t, "America/New_York")
	eu := newCal(t, "Europe/Berlin", weekdays, nineFive, "2026-12-25", "2026-12-26")
	lunch := newCal(t, "America/New_York", weekdays, []string{"08:00-12:00,13:00-17:00"})
	euWeek := newCal(t, "Europe/Berlin", allWeek, nineFive)
	nyWeek := newCal(t, "America/New_York", allWeek, nineFive)
	// 00:00-24:00 every day, but a holiday keeps it off the always-open
	// shortcut, so that the day-by-day path is what is tested.
	eu24 := newCal(t, "Europe/Berlin", allWeek, allDay, "2000-01-01")
	ny24 := newCal(t, "America/New_York", allWeek, allDay, "2000-01-01")
	euAlways := newCal(t, "Europe/Berlin", allWeek, allDay)
	weekend := newCal(t, "Europe/Berlin", []string{"sat-sun"}, allDay)
	night := newCal(t, "Europe/Berlin", allWeek, []string{"01:00-04:00"})
	if !euAlways.always || eu24.always {
		t.Fatal("always-open shortcut: want it for euAlways only")
	}
	tests := []struct {
		name     string
		cal      *Calendar
		loc      *time.Location
		from, to string
		want     time.Duration
	}{
		{"within a day", eu, berlin, "2026-03-02 10:00", "2026-03-02 12:30", 150 * time.Minute},
		{"before opening to after closing", eu, berlin, "2026-03-02 07:00", "2026-03-02 19:00", 8 * time.Hour},
		{"overnight", eu, berlin, "2026-03-02 16:00", "2026-03-03 10:00", 2 * time.Hour},
		{"over the weekend", eu, berlin, "2026-03-06 15:00", "2026-03-09 11:00", 4 * time.Hour},
		{"weekend only", eu, berlin, "2026-03-07 10:00", "2026-03-08 18:00", 0},
		{"one week", eu, berlin, "2026-03-02 00:00", "2026-03-09 00:00", 40 * time.Hour},
		{"four weeks", eu, berlin, "2026-03-02 12:00", "2026-03-30 12:00", 160 * time.Hour},
		{"christmas holidays", eu, berlin, "2026-12-24 09:00", "2026-12-28 10:00", 9 * time.Hour},
		{"a holiday only", eu, berlin, "2026-12-25 00:00", "2026-12-26 00:00", 0},
		{"to before from", eu, berlin, "2026-03-03 10:00", "2026-03-02 10:00", 0},
		{"empty", eu, berlin, "2026-03-03 10:00", "2026-03-03 10:00", 0},
		{"sub-second", eu, berlin, "2026-03-02 09:00:00.5", "2026-03-02 09:00:01", 500 * time.Millisecond},
		{"lunch break excluded", lunch, ny, "2026-03-02 11:00", "2026-03-02 14:00", 2 * time.Hour},
		{"starting in lunch", lunch, ny, "2026-03-02 12:30", "2026-03-03 09:00", 5 * time.Hour},
		{"lunch calendar full day", lunch, ny, "2026-03-02 00:00", "2026-03-03 00:00", 8 * time.Hour},
		// Clock changes: Berlin 2026-03-29 and 2026-10-25, New York
		// 2026-03-08 and 2026-11-01, all Sundays.
		{"berlin 09-17 spring forward", euWeek, berlin, "2026-03-29 00:00", "2026-03-30 00:00", 8 * time.Hour},
		{"berlin 09-17 fall back", euWeek, berlin, "2026-10-25 00:00", "2026-10-26 00:00", 8 * time.Hour},
		{"new york 09-17 spring forward", nyWeek, ny, "2026-03-08 00:00", "2026-03-09 00:00", 8 * time.Hour},
		{"new york 09-17 fall back", nyWeek, ny, "2026-11-01 00:00", "2026-11-02 00:00", 8 * time.Hour},
		{"berlin 24h spring forward", eu24, berlin, "2026-03-29 00:00", "2026-03-30 00:00", 23 * time.Hour},
		{"berlin 24h fall back", eu24, berlin, "2026-10-25 00:00", "2026-10-26 00:00", 25 * time.Hour},
		{"new york 24h spring forward", ny24, ny, "2026-03-08 00:00", "2026-03-09 00:00", 23 * time.Hour},
		{"new york 24h fall back", ny24, ny, "2026-11-01 00:00", "2026-11-02 00:00", 25 * time.Hour},
		{"berlin always-open spring forward", euAlways, berlin, "2026-03-29 00:00", "2026-03-30 00:00", 23 * time.Hour},
		{"berlin 24h week with spring forward", eu24, berlin, "2026-03-23 00:00", "2026-03-30 00:00", 167 * time.Hour},
		{"berlin 24h year 2026", eu24, berlin, "2026-01-01 00:00", "2027-01-01 00:00", 365 * 24 * time.Hour},
		{"berlin 09-17 year 2026", euWeek, berlin, "2026-01-01 00:00", "2027-01-01 00:00", 365 * 8 * time.Hour},
		{"weekend with spring forward", weekend, berlin, "2026-03-27 12:00", "2026-03-30 12:00", 47 * time.Hour},
		{"01-04 spring forward skips an hour", night, berlin, "2026-03-29 00:00", "2026-03-30 00:00", 2 * time.Hour},
		{"01-04 fall back repeats an hour", night, berlin, "2026-10-25 00:00", "2026-10-26 00:00", 4 * time.Hour},
		{"24x7", TwentyFourSeven(), berlin, "2026-03-29 00:00", "2026-03-30 00:00", 23 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from, to := at(t, tc.loc, tc.from), at(t, tc.loc, tc.to)
			if got := tc.cal.BusinessDuration(from, to); got != tc.want {
				t.Errorf("BusinessDuration = %v, want %v", got, tc.want)
			}
			if got := naiveBusiness(tc.cal, from, to); got != tc.want && !tc.cal.always {
				t.Errorf("naive reference = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	ny := mustLoc(t, "America/New_York")
	eu := newCal(t, "Europe/Berlin", weekdays, nineFive, "2026-12-25", "2026-12-26")
	lunch := newCal(t, "America/New_York", weekdays, []string{"08:00-12:00", "13:00-17:00"})
	eu24 := newCal(t, "Europe/Berlin", allWeek, allDay, "2000-01-01")
	ny24 := newCal(t, "America/New_York", allWeek, allDay, "2000-01-01")
	nyWeek := newCal(t, "America/New_York", allWeek, nineFive)
	threeDays, err := ParseDuration("3d")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cal    *Calendar
		loc    *time.Location
		start  string
		budget time.Duration
		want   string
	}{
		{"same day", eu, berlin, "2026-03-02 10:00", 4 * time.Hour, "2026-03-02 14:00"},
		{"ends at closing", eu, berlin, "2026-03-02 13:00", 4 * time.Hour, "2026-03-02 17:00"},
		{"overnight", eu, berlin, "2026-03-02 16:00", 2 * time.Hour, "2026-03-03 10:00"},
		{"over the weekend", eu, berlin, "2026-03-06 16:00", 2 * time.Hour, "2026-03-09 10:00"},
		{"start on a weekend", eu, berlin, "2026-03-07 12:00", time.Hour, "2026-03-09 10:00"},
		{"start before opening", eu, berlin, "2026-03-02 06:00", 30 * time.Minute, "2026-03-02 09:30"},
		{"over christmas", eu, berlin, "2026-12-24 16:00", 2 * time.Hour, "2026-12-28 10:00"},
		{"3d is 72 open hours: nine working days", eu, berlin, "2026-03-02 09:00", threeDays, "2026-03-12 17:00"},
		{"many weeks", eu, berlin, "2026-03-02 09:00", 400 * time.Hour, "2026-05-08 17:00"},
		{"zero budget", eu, berlin, "2026-03-07 12:00", 0, "2026-03-07 12:00"},
		{"over lunch", lunch, ny, "2026-03-02 11:00", 2 * time.Hour, "2026-03-02 14:00"},
		{"in lunch", lunch, ny, "2026-03-02 12:15", time.Hour, "2026-03-02 14:00"},
		{"24h over spring forward", eu24, berlin, "2026-03-29 00:00", 24 * time.Hour, "2026-03-30 01:00"},
		{"24h over fall back", eu24, berlin, "2026-10-25 00:00", 24 * time.Hour, "2026-10-25 23:00"},
		{"new york 24h over spring forward", ny24, ny, "2026-03-08 00:00", 24 * time.Hour, "2026-03-09 01:00"},
		{"new york 24h over fall back", ny24, ny, "2026-11-01 00:00", 24 * time.Hour, "2026-11-01 23:00"},
		{"new york 09-17 over fall back", nyWeek, ny, "2026-10-31 16:00", 2 * time.Hour, "2026-11-01 10:00"},
		{"24x7", TwentyFourSeven(), berlin, "2026-03-29 00:00", 24 * time.Hour, "2026-03-30 01:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start, want := at(t, tc.loc, tc.start), at(t, tc.loc, tc.want)
			got := tc.cal.Deadline(start, tc.budget)
			if !got.Equal(want) {
				t.Fatalf("Deadline = %v, want %v", got.In(tc.loc), want)
			}
			if b := tc.cal.BusinessDuration(start, got); b != tc.budget {
				t.Errorf("BusinessDuration(start, Deadline) = %v, want %v", b, tc.budget)
			}
		})
	}
}

func TestIsOpenNextOpen(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	eu := newCal(t, "Europe/Berlin", weekdays, []string{"08:00-12:00,13:00-17:00"}, "2026-12-25")
	tests := []struct {
		name string
		t    string
		open bool
		next string
	}{
		{"at opening", "2026-03-02 08:00", true, "2026-03-02 08:00"},
		{"in the morning", "2026-03-02 10:00", true, "2026-03-02 10:00"},
		{"at lunch", "2026-03-02 12:00", false, "2026-03-02 13:00"},
		{"at closing", "2026-03-02 17:00", false, "2026-03-03 08:00"},
		{"friday evening", "2026-03-06 18:00", false, "2026-03-09 08:00"},
		{"christmas eve evening", "2026-12-24 20:00", false, "2026-12-28 08:00"},
		{"on christmas", "2026-12-25 10:00", false, "2026-12-28 08:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tt := at(t, berlin, tc.t)
			if got := eu.IsOpen(tt); got != tc.open {
				t.Errorf("IsOpen = %v, want %v", got, tc.open)
			}
			if got, want := eu.NextOpen(tt), at(t, berlin, tc.next); !got.Equal(want) {
				t.Errorf("NextOpen = %v, want %v", got, want)
			}
		})
	}
	if name, ok := eu.HolidayAt(at(t, berlin, "2026-12-25 23:30")); !ok || name != "" {
		t.Errorf("HolidayAt christmas = %q, %v", name, ok)
	}
}

// TestSearchLimit: a calendar closed for more than SearchDays days by
// holidays gives the zero time instead of searching on.
func TestSearchLimit(t *testing.T) {
	var hols []string
	for d := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2037; d = d.AddDate(0, 0, 1) {
		if d.Weekday() == time.Monday {
			hols = append(hols, d.Format(time.DateOnly))
		}
	}
	c := newCal(t, "UTC", []string{"mon"}, nineFive, hols...)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := c.NextOpen(start); !got.IsZero() {
		t.Errorf("NextOpen = %v, want zero", got)
	}
	if got := c.Deadline(start, time.Hour); !got.IsZero() {
		t.Errorf("Deadline = %v, want zero", got)
	}
	if got := c.BusinessDuration(start, start.AddDate(10, 0, 0)); got != 0 {
		t.Errorf("BusinessDuration = %v, want 0", got)
	}
	if got := TwentyFourSeven().Deadline(start, (SearchDays+1)*24*time.Hour); !got.IsZero() {
		t.Errorf("24x7 Deadline beyond the horizon = %v, want zero", got)
	}
}

// propertyCalendars are calendars with clock changes in both hemispheres,
// lunch breaks, holidays and odd hours.
func propertyCalendars(t testing.TB) map[string]*Calendar {
	return map[string]*Calendar{
		"berlin business": newCal(t, "Europe/Berlin", weekdays, nineFive, "2026-12-25", "2026-12-26", "2027-01-01", "2028-05-01"),
		"new york lunch":  newCal(t, "America/New_York", weekdays, []string{"08:00-12:00,13:00-17:00"}, "2026-07-03", "2027-11-25"),
		"berlin 24h":      newCal(t, "Europe/Berlin", allWeek, allDay, "2026-06-01"),
		"sydney":          newCal(t, "Australia/Sydney", []string{"mon", "wed", "fri-sat"}, []string{"07:30-11:00", "11:00-12:00,18:00-24:00"}),
		"berlin night":    newCal(t, "Europe/Berlin", allWeek, []string{"00:00-00:30,01:30-02:10,02:20-02:40,02:50-03:30,23:00-24:00"}),
		"kolkata":         newCal(t, "Asia/Kolkata", []string{"sun-thu"}, []string{"10:00-18:30"}),
		"24x7":            TwentyFourSeven(),
	}
}

func randomInstant(r *rand.Rand) time.Time {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return base.Add(time.Duration(r.Int63n(int64(4 * 365 * 24 * time.Hour))))
}

// TestDeadlineInverse: BusinessDuration(start, Deadline(start, b)) == b,
// and no earlier instant has used up b.
func TestDeadlineInverse(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for name, cal := range propertyCalendars(t) {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < 2000; i++ {
				start := randomInstant(r)
				if i%3 == 0 {
					start = start.Truncate(time.Minute)
				}
				var b time.Duration
				switch i % 4 {
				case 0:
					b = time.Duration(r.Int63n(int64(10 * time.Hour)))
				case 1:
					b = time.Duration(r.Int63n(600)) * time.Minute
				default:
					b = time.Duration(r.Int63n(int64(3000 * time.Hour)))
				}
				b++
				d := cal.Deadline(start, b)
				if d.IsZero() {
					t.Fatalf("Deadline(%v, %v) = zero", start, b)
				}
				if got := cal.BusinessDuration(start, d); got != b {
					t.Fatalf("BusinessDuration(%v, Deadline = %v) = %v, want %v", start, d, got, b)
				}
				if got := cal.BusinessDuration(start, d.Add(-1)); got >= b {
					t.Fatalf("Deadline(%v, %v) = %v is not the earliest: %v already used 1ns before", start, b, d, got)
				}
			}
		})
	}
}

// TestBusinessDurationMatchesNaive compares the week-skipping
// implementation with a plain day-by-day one using time.Date for every
// boundary, and checks additivity.
func TestBusinessDurationMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for name, cal := range propertyCalendars(t) {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < 300; i++ {
				from := randomInstant(r)
				to := from.Add(time.Duration(r.Int63n(int64(500 * 24 * time.Hour))))
				mid := from.Add(to.Sub(from) / time.Duration(2+r.Intn(5)))
				got := cal.BusinessDuration(from, to)
				if want := naiveBusiness(cal, from, to); got != want {
					t.Fatalf("BusinessDuration(%v, %v) = %v, naive %v", from, to, got, want)
				}
				if sum := cal.BusinessDuration(from, mid) + cal.BusinessDuration(mid, to); sum != got {
					t.Fatalf("not additive at %v: %v + ... = %v, want %v", mid, cal.BusinessDuration(from, mid), sum, got)
				}
				if open := cal.IsOpen(from); open != (cal.BusinessDuration(from, from.Add(time.Nanosecond)) == time.Nanosecond) {
					t.Fatalf("IsOpen(%v) = %v disagrees with BusinessDuration", from, open)
				}
				if n := cal.NextOpen(from); n.IsZero() || !cal.IsOpen(n) || cal.BusinessDuration(from, n) != 0 {
					t.Fatalf("NextOpen(%v) = %v is not the next opening", from, n)
				}
			}
		})
	}
}

// naiveBusiness is the definition: every day's ranges resolved with
// time.Date, no shortcuts.
func naiveBusiness(c *Calendar, from, to time.Time) time.Duration {
	if c.always {
		return max(to.Sub(from), 0)
	}
	var total time.Duration
	lf, lt := from.In(c.loc), to.In(c.loc)
	for d := time.Date(lf.Year(), lf.Month(), lf.Day()-1, 0, 0, 0, 0, time.UTC); !d.After(time.Date(lt.Year(), lt.Month(), lt.Day()+1, 0, 0, 0, 0, time.UTC)); d = d.AddDate(0, 0, 1) {
		if _, hol := c.holidays[d.Unix()/secondsPerDay]; hol {
			continue
		}
		wall := func(min int) time.Time { return time.Date(d.Year(), d.Month(), d.Day(), 0, min, 0, 0, c.loc) }
		prev, end := wall(0), wall(24*60)
		for _, s := range c.week[d.Weekday()] {
			a, b := wall(s.From), wall(s.To)
			if a.Before(prev) {
				a = prev
			}
			if b.After(end) {
				b = end
			}
			if !b.After(a) {
				continue
			}
			prev = b
			if a.Before(from) {
				a = from
			}
			if b.After(to) {
				b = to
			}
			if b.After(a) {
				total += b.Sub(a)
			}
		}
	}
	return total
}
