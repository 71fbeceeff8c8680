package kpi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/internal/svctest"
	"github.com/triage-dev/triage/metrics/kpi"
)

// BenchmarkKPIOneMillionChanges computes the KPIs over a store holding
// about 1M incident changes: 91k incidents of 5 alerts each, every alert
// firing then resolving (opened, 4 alert_added, 5 alert_resolved,
// resolved: 11 changes per incident). This is the work behind
// GET /api/v1/kpi, without HTTP.
func BenchmarkKPIOneMillionChanges(b *testing.B) {
	svc := svctest.Start(b, "")
	ctx := context.Background()
	const incidents, alerts = 91_000, 5
	now := time.Now()
	batch := make([]triage.Event, 0, 10_000)
	flush := func() {
		if err := svc.Submit(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for _, st := range []triage.AlertStatus{triage.AlertFiring, triage.AlertResolved} {
		for i := range incidents {
			for a := range alerts {
				ev := triage.Event{Status: st, Severity: "critical", Labels: map[string]string{
					"alertname": fmt.Sprintf("A%d", i), "service": fmt.Sprintf("svc-%d", i%50), "instance": fmt.Sprintf("h%d", a)}}
				if err := ev.Normalize(now); err != nil {
					b.Fatal(err)
				}
				batch = append(batch, ev)
				if len(batch) == cap(batch) {
					flush()
				}
			}
		}
	}
	flush()
	if err := svc.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	last, err := svc.Store.LastChange()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(last), "changes")
	b.ResetTimer()
	for b.Loop() {
		r, err := kpi.ComputeJSON(svc.Store.EachIncidentJSON, now.Add(-time.Hour), now.Add(time.Hour), now, kpi.Options{SLA: true})
		if err != nil {
			b.Fatal(err)
		}
		if r.Opened != incidents {
			b.Fatalf("opened %d, want %d", r.Opened, incidents)
		}
	}
}
