package sla

import (
	"testing"
	"time"
)

func benchCalendar(b *testing.B) *Calendar {
	return newCal(b, "Europe/Berlin", weekdays, []string{"08:00-12:00,13:00-17:00"},
		"2026-01-01", "2026-04-03", "2026-04-06", "2026-05-01", "2026-05-14", "2026-05-25",
		"2026-10-03", "2026-12-24", "2026-12-25", "2026-12-26", "2026-12-31")
}

// BenchmarkBusinessDurationYear: one year of a business calendar with
// holidays and two clock changes.
func BenchmarkBusinessDurationYear(b *testing.B) {
	c := benchCalendar(b)
	from := time.Date(2026, 1, 1, 10, 30, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	for b.Loop() {
		c.BusinessDuration(from, to)
	}
}

// BenchmarkBusinessDurationYearDaily: one year with a holiday every week,
// so that no week can be skipped: the day-by-day cost.
func BenchmarkBusinessDurationYearDaily(b *testing.B) {
	var hols []string
	for d := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() == 2026; d = d.AddDate(0, 0, 7) {
		hols = append(hols, d.Format(time.DateOnly))
	}
	c := newCal(b, "Europe/Berlin", weekdays, nineFive, hols...)
	from := time.Date(2026, 1, 1, 10, 30, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	for b.Loop() {
		c.BusinessDuration(from, to)
	}
}

// BenchmarkDeadline: a typical 4h target.
func BenchmarkDeadline(b *testing.B) {
	c := benchCalendar(b)
	start := time.Date(2026, 3, 6, 15, 0, 0, 0, time.UTC)
	for b.Loop() {
		c.Deadline(start, 4*time.Hour)
	}
}

// BenchmarkDeadlineYear: a budget of about a year of working time.
func BenchmarkDeadlineYear(b *testing.B) {
	c := benchCalendar(b)
	start := time.Date(2026, 1, 1, 10, 30, 0, 0, time.UTC)
	for b.Loop() {
		c.Deadline(start, 1900*time.Hour)
	}
}

// BenchmarkEvaluate: both targets with warnings, one hold.
func BenchmarkEvaluate(b *testing.B) {
	p, cal, berlin := standard(b)
	opened := time.Date(2026, 3, 2, 9, 0, 0, 0, berlin)
	inc := Incident{OpenedAt: opened, Pauses: []Interval{{From: opened.Add(2 * time.Hour), To: opened.Add(26 * time.Hour)}}}
	now := opened.Add(50 * time.Hour)
	for b.Loop() {
		Evaluate(p, cal, inc, now)
	}
}
