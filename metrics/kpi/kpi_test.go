package kpi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/triage-dev/triage"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func at(min int) *time.Time { t := t0.Add(time.Duration(min) * time.Minute); return &t }

func TestCompute(t *testing.T) {
	merged := uint64(1)
	incs := []triage.Incident{
		// orders: acked after 10m, resolved after 60m, 10 events / 4 alerts, one breach.
		{ID: 1, Service: "orders", OpenedAt: *at(0), AcknowledgedAt: at(10), ResolvedAt: at(60), EventCount: 10, AlertCount: 4, SLABreaches: 1},
		// orders: acked after 20m, resolved after 120m, reopened once, feedback 4.
		{ID: 2, Service: "orders", OpenedAt: *at(30), AcknowledgedAt: at(50), ResolvedAt: at(150), EventCount: 6, AlertCount: 2, ReopenCount: 1,
			Feedback: &triage.Feedback{Score: 4, At: *at(160)}},
		// db: still open at now (t0+240m), feedback 2.
		{ID: 3, Service: "db", OpenedAt: *at(60), EventCount: 4, AlertCount: 4, Feedback: &triage.Feedback{Score: 2, At: *at(70)}},
		// opened before the range, resolved inside it: counts for MTTR only.
		{ID: 4, Service: "db", OpenedAt: t0.Add(-2 * time.Hour), ResolvedAt: at(0), EventCount: 100, AlertCount: 50},
		// merged into 1: ignored.
		{ID: 5, Service: "orders", OpenedAt: *at(1), EventCount: 3, AlertCount: 1, MergedInto: &merged},
	}
	each := func(fn func(*triage.Incident) error) error {
		for i := range incs {
			if err := fn(&incs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	r, err := Compute(each, t0, t0.Add(4*time.Hour), t0.Add(4*time.Hour), Options{
		SLA: true, Weights: map[string]float64{"orders": 2},
		Targets: map[string]Target{"orders": {MaxImpactMinutes: 400}, "db": {MinSatisfaction: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	eq := func(name string, got *float64, want float64) {
		t.Helper()
		if got == nil || *got < want-1e-9 || *got > want+1e-9 {
			t.Errorf("%s = %v, want %v", name, deref(got), want)
		}
	}
	if r.Opened != 3 || r.Acknowledged != 2 || r.Resolved != 3 {
		t.Fatalf("opened %d acked %d resolved %d, want 3 2 3", r.Opened, r.Acknowledged, r.Resolved)
	}
	eq("MTTA", r.MTTASeconds, (600+1200)/2)
	eq("MTTR", r.MTTRSeconds, (3600+7200+7200)/3)
	if r.Events != 20 || r.Alerts != 10 {
		t.Fatalf("events %d alerts %d, want 20 10", r.Events, r.Alerts)
	}
	eq("alert compression", r.AlertCompression, 1-3.0/10)
	eq("event compression", r.EventCompression, 1-3.0/20)
	eq("reopen rate", r.ReopenRate, 1.0/3)
	eq("SLA compliance", r.SLACompliance, 2.0/3)
	eq("satisfaction", r.Satisfaction, 3)
	// impact: orders (60 + 120) * 2 = 360; db: 180 (open to now) + 0.
	if r.UserImpactMinutes != 540 {
		t.Fatalf("user impact %v, want 540", r.UserImpactMinutes)
	}
	if len(r.Services) != 2 || r.Services[0].Service != "orders" {
		t.Fatalf("services %+v", r.Services)
	}
	o, d := r.Services[0], r.Services[1]
	eq("orders MTBF", o.MTBFSeconds, 1800)
	if d.MTBFSeconds != nil {
		t.Errorf("db MTBF %v with one opening in range, want null", *d.MTBFSeconds)
	}
	if o.XLAMet == nil || !*o.XLAMet || d.XLAMet == nil || *d.XLAMet {
		t.Fatalf("XLA met: orders %v db %v, want true false", o.XLAMet, d.XLAMet)
	}
	// The same from the JSON records the store keeps.
	jr, err := ComputeJSON(func(fn func([]byte) error) error {
		for i := range incs {
			b, err := json.Marshal(&incs[i])
			if err != nil {
				return err
			}
			if err := fn(b); err != nil {
				return err
			}
		}
		return nil
	}, t0, t0.Add(4*time.Hour), t0.Add(4*time.Hour), Options{
		SLA: true, Weights: map[string]float64{"orders": 2},
		Targets: map[string]Target{"orders": {MaxImpactMinutes: 400}, "db": {MinSatisfaction: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(jr)
	if string(a) != string(b) {
		t.Fatalf("from JSON records:\n%s\nfrom incidents:\n%s", b, a)
	}
	// An empty range has no averages.
	r, _ = Compute(each, t0.Add(-48*time.Hour), t0.Add(-47*time.Hour), t0, Options{})
	if r.MTTASeconds != nil || r.SLACompliance != nil || r.Opened != 0 {
		t.Fatalf("empty range %+v", r)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
