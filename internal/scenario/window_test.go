package scenario

import (
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
)

func TestTimeWindowGrouper(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	eng := correlate.NewEngine(correlate.Options{ResolveAfter: time.Minute, ReopenWindow: 10 * time.Minute},
		NewTimeWindowGrouper(5*time.Minute))
	send := func(at time.Duration, status triage.AlertStatus, name string) correlate.Result {
		t.Helper()
		now := t0.Add(at)
		ev := triage.Event{Status: status, Labels: map[string]string{"alertname": name}}
		if err := ev.Normalize(now); err != nil {
			t.Fatal(err)
		}
		eng.Tick(now)
		r := eng.Process(&ev, now)
		eng.Flush()
		return r
	}
	for _, step := range []struct {
		at     time.Duration
		status triage.AlertStatus
		name   string
		want   uint64
	}{
		{0, triage.AlertFiring, "A", 1},
		{2 * time.Minute, triage.AlertFiring, "B", 1},
		{4 * time.Minute, triage.AlertFiring, "A", 1}, // a repeat does not extend the window
		{5 * time.Minute, triage.AlertFiring, "C", 1}, // 5 minutes after the first alert: still in
		{5*time.Minute + time.Second, triage.AlertFiring, "D", 2},
		{6 * time.Minute, triage.AlertFiring, "E", 2},
		{6*time.Minute + 30*time.Second, triage.AlertResolved, "D", 2},
		{6*time.Minute + 30*time.Second, triage.AlertResolved, "E", 2},
		// INC-2 resolves at 7m30s: its window closes with it.
		{8 * time.Minute, triage.AlertFiring, "F", 3},
		{9 * time.Minute, triage.AlertFiring, "G", 3},
	} {
		if r := send(step.at, step.status, step.name); r.IncidentID != step.want {
			t.Fatalf("%s %s at %s: incident %d, want %d", step.name, step.status, step.at, r.IncidentID, step.want)
		}
	}
}
