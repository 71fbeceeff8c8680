package sla

import (
	"testing"
	"time"
)

func TestPauses(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	eu := newCal(t, "Europe/Berlin", weekdays, nineFive)
	ts := func(s string) time.Time { return at(t, berlin, s) }
	pause := func(from, to string) Interval {
		p := Interval{From: ts(from)}
		if to != "" {
			p.To = ts(to)
		}
		return p
	}
	tests := []struct {
		name        string
		start       string
		pauses      []Interval
		now         string
		budget      time.Duration
		wantElapsed time.Duration
		wantDue     string // "" for unknown
	}{
		{"no pauses", "2026-03-02 09:00", nil, "2026-03-02 12:00", 4 * time.Hour, 3 * time.Hour, "2026-03-02 13:00"},
		{"hold in hours", "2026-03-02 10:00", []Interval{pause("2026-03-02 11:00", "2026-03-02 12:00")},
			"2026-03-02 15:00", 6 * time.Hour, 4 * time.Hour, "2026-03-02 17:00"},
		{"hold out of hours changes nothing", "2026-03-02 16:00", []Interval{pause("2026-03-02 18:00", "2026-03-03 08:00")},
			"2026-03-03 10:00", 4 * time.Hour, 2 * time.Hour, "2026-03-03 12:00"},
		{"hold over closing", "2026-03-02 09:00", []Interval{pause("2026-03-02 16:00", "2026-03-03 10:00")},
			"2026-03-03 12:00", 10 * time.Hour, 9 * time.Hour, "2026-03-03 13:00"},
		{"overlapping holds count once", "2026-03-02 09:00",
			[]Interval{pause("2026-03-02 11:00", "2026-03-02 13:00"), pause("2026-03-02 10:00", "2026-03-02 12:00")},
			"2026-03-02 15:00", 4 * time.Hour, 3 * time.Hour, "2026-03-02 16:00"},
		{"hold from before the start", "2026-03-02 09:00", []Interval{pause("2026-03-01 12:00", "2026-03-02 11:00")},
			"2026-03-02 12:00", 2 * time.Hour, time.Hour, "2026-03-02 13:00"},
		{"hold over before the start", "2026-03-02 09:00", []Interval{pause("2026-03-01 12:00", "2026-03-02 08:00")},
			"2026-03-02 12:00", 4 * time.Hour, 3 * time.Hour, "2026-03-02 13:00"},
		{"open-ended hold: deadline unknown", "2026-03-02 09:00", []Interval{pause("2026-03-02 12:00", "")},
			"2026-03-03 12:00", 4 * time.Hour, 3 * time.Hour, ""},
		{"hold ending after now is still on", "2026-03-02 09:00", []Interval{pause("2026-03-02 12:00", "2026-03-04 09:00")},
			"2026-03-03 12:00", 4 * time.Hour, 3 * time.Hour, ""},
		{"open-ended hold after the budget ran out", "2026-03-02 09:00", []Interval{pause("2026-03-02 12:00", "")},
			"2026-03-03 12:00", 2 * time.Hour, 3 * time.Hour, "2026-03-02 11:00"},
		{"hold that has not begun is ignored", "2026-03-02 09:00", []Interval{pause("2026-03-02 12:00", "2026-03-02 13:00")},
			"2026-03-02 11:00", 4 * time.Hour, 2 * time.Hour, "2026-03-02 13:00"},
		{"empty hold is ignored", "2026-03-02 09:00", []Interval{pause("2026-03-02 12:00", "2026-03-02 11:00")},
			"2026-03-02 14:00", 4 * time.Hour, 5 * time.Hour, "2026-03-02 13:00"},
		{"now before start", "2026-03-02 09:00", nil, "2026-03-02 08:00", time.Hour, 0, "2026-03-02 10:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start, now := ts(tc.start), ts(tc.now)
			if got := Elapsed(eu, start, tc.pauses, now); got != tc.wantElapsed {
				t.Errorf("Elapsed = %v, want %v", got, tc.wantElapsed)
			}
			due, ok := DueAt(eu, start, tc.pauses, tc.budget, now)
			switch {
			case tc.wantDue == "" && ok:
				t.Errorf("DueAt = %v, want unknown", due)
			case tc.wantDue != "" && (!ok || !due.Equal(ts(tc.wantDue))):
				t.Errorf("DueAt = %v, %v, want %v", due, ok, tc.wantDue)
			}
		})
	}
}
