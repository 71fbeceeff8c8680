package sla

import (
	"testing"
	"time"
)

// FuzzCalendar decodes arbitrary YAML as an sla section and, when it is
// valid, runs every calendar and policy on instants from the fuzzer: no
// panic, no hang, and the results keep their invariants.
func FuzzCalendar(f *testing.F) {
	f.Add([]byte(exampleConfig), int64(0), int64(1e15), int64(4*time.Hour))
	f.Add([]byte("calendars:\n  - {name: n, time_zone: America/New_York, days: [sun-sat], hours: [\"00:00-24:00\"], holidays: [2026-03-08]}\npolicies:\n  - {name: p, calendar: n, acknowledge: 1d, resolve: 3d, warn_at: [0.1, 0.5]}\n"),
		int64(-3e16), int64(4e15), int64(90*time.Minute))
	f.Add([]byte("calendars:\n  - {name: n, time_zone: Australia/Lord_Howe, days: [sun], hours: [\"01:30-02:15,02:15-02:45\", \"23:59-24:00\"]}\npolicies:\n  - {name: p, calendar: n, resolve: 1h}\n"),
		int64(7e15), int64(-1), int64(1))
	f.Fuzz(fuzzCalendar)
}

func fuzzCalendar(t *testing.T, data []byte, a, b, budget int64) {
	c, err := Parse("fuzz.yaml", data)
	if err != nil {
		return
	}
	s, err := Build(*c)
	if err != nil {
		t.Fatalf("Parse accepted a config that Build rejects: %v", err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	from := base.Add(time.Duration(a % int64(20*365*24*time.Hour)))
	to := from.Add(time.Duration(b % int64(3*365*24*time.Hour)))
	bud := time.Duration(budget % int64(5000*time.Hour))
	names := []string{AlwaysOpen}
	for _, cc := range c.Calendars {
		names = append(names, cc.Name)
	}
	for _, name := range names {
		cal := s.Calendar(name)
		bd := cal.BusinessDuration(from, to)
		if bd < 0 || bd > max(to.Sub(from), 0) {
			t.Fatalf("%s: BusinessDuration(%v, %v) = %v", name, from, to, bd)
		}
		if d := cal.Deadline(from, bud); bud > 0 && !d.IsZero() {
			if got := cal.BusinessDuration(from, d); got != bud {
				t.Fatalf("%s: BusinessDuration(%v, Deadline(%v) = %v) = %v", name, from, bud, d, got)
			}
		}
		open := cal.IsOpen(from)
		if n := cal.NextOpen(from); open && !n.Equal(from) || !n.IsZero() && !cal.IsOpen(n) {
			t.Fatalf("%s: IsOpen(%v) = %v, NextOpen = %v", name, from, open, n)
		}
	}
	early, late := from, to
	if late.Before(early) {
		early, late = late, early
	}
	mid := early.Add(late.Sub(early) / 2)
	inc := Incident{OpenedAt: early, ResolvedAt: &late, Pauses: []Interval{{From: mid, To: mid.Add(bud)}, {From: late}}}
	for _, p := range s.Policies() {
		cal := s.Calendar(p.Calendar)
		for _, now := range []time.Time{mid, late.Add(time.Hour)} {
			Evaluate(&p, cal, inc, now)
			NextEvent(&p, cal, inc, now)
		}
		Crossings(&p, cal, inc, early, late)
	}
}
