package tracker

import (
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/metrics/sla"
)

func TestMessageRoundTrip(t *testing.T) {
	set, err := sla.Build(sla.Config{
		Calendars: []sla.CalendarConfig{{Name: "eu-business", TimeZone: "Europe/Berlin", Days: []string{"mon-fri"}, Hours: []string{"09:00-17:00"}}},
		Policies: []sla.PolicyConfig{{Name: "standard", Calendar: "eu-business",
			Acknowledge: sla.Duration(90 * time.Minute), Resolve: sla.Duration(72 * time.Hour), WarnAt: []float64{0.5, 0.875, 0.9}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &set.Policies()[0]
	cal := set.Calendar("eu-business")
	at := time.Date(2026, 11, 30, 11, 0, 30, 0, time.UTC)
	due := time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		c    sla.Crossing
		kind string
		want string
	}{
		{"warning", sla.Crossing{Target: sla.Acknowledge, Kind: sla.Warning, Threshold: 0.5, At: at}, triage.KindSLAWarning,
			"SLA warning: acknowledge target 1h30m 50% used (policy standard, calendar eu-business), due Tue 2026-12-01 12:00 CET"},
		{"fractional percent", sla.Crossing{Target: sla.Resolve, Kind: sla.Warning, Threshold: 0.875, At: at}, triage.KindSLAWarning,
			"SLA warning: resolve target 3d 87.5% used (policy standard, calendar eu-business), due Tue 2026-12-01 12:00 CET"},
		{"ninety", sla.Crossing{Target: sla.Resolve, Kind: sla.Warning, Threshold: 0.9, At: at}, triage.KindSLAWarning,
			"SLA warning: resolve target 3d 90% used (policy standard, calendar eu-business), due Tue 2026-12-01 12:00 CET"},
		{"breach", sla.Crossing{Target: sla.Resolve, Kind: sla.Breach, Threshold: 1, At: at}, triage.KindSLABreach,
			"SLA breach: resolve target 3d breached at Mon 2026-11-30 12:00:30 CET (policy standard, calendar eu-business)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := FormatMessage(tc.c, p, cal, due)
			if msg != tc.want {
				t.Fatalf("FormatMessage =\n%s\nwant\n%s", msg, tc.want)
			}
			got, ok := ParseMessage(triage.TimelineEntry{Kind: tc.kind, Actor: Actor, Message: msg})
			want := Crossing{Target: tc.c.Target, Kind: tc.c.Kind, Threshold: tc.c.Threshold, Policy: "standard"}
			if !ok || got != want {
				t.Errorf("ParseMessage = %+v, %v; want %+v", got, ok, want)
			}
		})
	}
}

func TestParseMessageRejects(t *testing.T) {
	for _, e := range []triage.TimelineEntry{
		{Kind: triage.KindSLAWarning, Actor: "alice", Message: "SLA warning: resolve target 4h 75% used (policy p, calendar c)"},
		{Kind: triage.KindComment, Actor: Actor, Message: "SLA warning: resolve target 4h 75% used (policy p, calendar c)"},
		{Kind: triage.KindSLABreach, Actor: Actor, Message: "SLA warning: resolve target 4h 75% used (policy p, calendar c)"},
		{Kind: triage.KindSLAWarning, Actor: Actor, Message: "SLA breach: resolve target 4h breached at Mon 2026-11-30 12:00 CET"},
		{Kind: triage.KindSLAWarning, Actor: Actor, Message: "SLA warning: resolve target 4h (policy p, calendar c)"},
		{Kind: triage.KindSLAWarning, Actor: Actor, Message: "SLA warning: respond target 4h 75% used"},
		{Kind: triage.KindSLAWarning, Actor: Actor, Message: "SLA warning: resolve target 4h 175% used"},
		{Kind: triage.KindSLAWarning, Actor: Actor, Message: "note: SLA warning: resolve target 4h 75% used"},
		{Kind: triage.KindSLABreach, Actor: Actor, Message: ""},
	} {
		if c, ok := ParseMessage(e); ok {
			t.Errorf("ParseMessage(%+v) = %+v, want not an SLA crossing", e, c)
		}
	}
}

func TestFormatBudget(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15m", 4 * time.Hour: "4h", 90 * time.Minute: "1h30m", 72 * time.Hour: "3d",
		36 * time.Hour: "36h", 90 * time.Second: "1m30s", 45 * time.Second: "45s",
	} {
		if got := formatBudget(d); got != want {
			t.Errorf("formatBudget(%s) = %q, want %q", d, got, want)
		}
	}
}
