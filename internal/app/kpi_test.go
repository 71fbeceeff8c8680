package app_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/metrics/kpi"
)

// The lifecycle endpoints of issue 5 through serve: hold, feedback after
// resolution, and the KPIs on embedded defaults (no ClickHouse).
func TestServeHoldFeedbackAndKPI(t *testing.T) {
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", filepath.Join(t.TempDir(), "data")
	d := startInproc(t, cfg)
	ev := `{"labels": {"alertname": "DiskFull", "service": "db"}, "severity": "critical", "status": "firing"}`
	if code := d.do("POST", "/api/v1/events", ev, nil); code != 202 && code != 200 {
		t.Fatalf("event: %d", code)
	}
	var inc triage.Incident
	if code := d.do("POST", "/api/v1/incidents/INC-1/hold", `{"actor": "alice", "note": "vendor"}`, &inc); code != 200 || !inc.OnHold {
		t.Fatalf("hold: %d on_hold=%v", code, inc.OnHold)
	}
	var off triage.Incident
	if code := d.do("POST", "/api/v1/incidents/1/unhold", ``, &off); code != 200 || off.OnHold {
		t.Fatalf("unhold: %d on_hold=%v", code, off.OnHold)
	}
	time.Sleep(1100 * time.Millisecond)
	if code := d.do("POST", "/api/v1/incidents/1/acknowledge", `{"actor": "alice"}`, nil); code != 200 {
		t.Fatalf("acknowledge: %d", code)
	}
	if code := d.do("POST", "/api/v1/incidents/1/resolve", `{"actor": "alice"}`, nil); code != 200 {
		t.Fatalf("resolve: %d", code)
	}
	if code := d.do("POST", "/api/v1/incidents/1/hold", ``, nil); code != 409 {
		t.Fatalf("hold of a resolved incident: %d, want 409", code)
	}
	for _, bad := range []string{`{"score": 9}`, `{"score": 3, "extra": 1}`, `not json`, `{"comment": "no score"}`} {
		if code := d.do("POST", "/api/v1/incidents/1/feedback", bad, nil); code != 400 {
			t.Fatalf("feedback %s: %d, want 400", bad, code)
		}
	}
	if code := d.do("POST", "/api/v1/incidents/1/feedback", `{"score": 4, "comment": "fast", "actor": "bob"}`, &inc); code != 200 ||
		inc.Feedback == nil || inc.Feedback.Score != 4 {
		t.Fatalf("feedback: %d %+v", code, inc.Feedback)
	}
	if code := d.do("POST", "/api/v1/incidents/99/feedback", `{"score": 4}`, nil); code != 404 {
		t.Fatalf("feedback on an unknown incident: %d", code)
	}
	var rep kpi.Report
	if code := d.do("GET", "/api/v1/kpi", "", &rep); code != 200 {
		t.Fatalf("kpi: %d", code)
	}
	if rep.Opened != 1 || rep.Resolved != 1 || rep.MTTASeconds == nil || *rep.MTTASeconds < 1 ||
		rep.Satisfaction == nil || *rep.Satisfaction != 4 || rep.Events != 1 {
		t.Fatalf("kpi %+v", rep)
	}
	for _, q := range []string{"?from=yesterday", "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"} {
		if code := d.do("GET", "/api/v1/kpi"+q, "", nil); code != 400 {
			t.Fatalf("kpi%s: %d, want 400", q, code)
		}
	}
	if code := d.do("GET", "/api/v1/kpi?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", "", &rep); code != 200 || rep.Opened != 0 || rep.MTTASeconds != nil {
		t.Fatalf("kpi of an empty range: %d %+v", code, rep)
	}
}
