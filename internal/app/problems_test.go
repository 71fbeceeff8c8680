package app_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate/problems"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/metrics/kpi"
	"github.com/triage-dev/triage/metrics/sla"
)

// serve with problems and an SLA policy: a recurring alert opens a problem
// that can be marked a known error, and an unacknowledged P1 gets its SLA
// warning and breach on the timeline, counted in the KPIs.
func TestServeProblemsAndSLA(t *testing.T) {
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", filepath.Join(t.TempDir(), "data")
	cfg.Correlation.ResolveAfter, cfg.Correlation.ReopenWindow = 0, 0
	cfg.Store.CheckpointInterval = config.Duration(10 * time.Millisecond)
	cfg.Problems.Threshold = 2
	cfg.SLA = sla.Config{Policies: []sla.PolicyConfig{{Name: "p1", Priorities: []string{"P1"}, Calendar: "24x7",
		Acknowledge: sla.Duration(2 * time.Second), WarnAt: []float64{0.5}}}}
	d := startInproc(t, cfg)
	fire := `{"labels": {"alertname": "DiskFull", "service": "db", "instance": "db-1"}, "severity": "critical", "status": "firing"}`
	resolve := strings.Replace(fire, `"status": "firing"`, `"status": "resolved"`, 1)
	for i := range 2 {
		if code := d.do("POST", "/api/v1/events", fire, nil); code != 202 && code != 200 {
			t.Fatalf("fire %d: %d", i, code)
		}
		if i == 0 {
			// The first incident stays open until its SLA is breached.
			waitUntil(t, "the SLA breach on INC-1", func() bool {
				var inc triage.Incident
				d.do("GET", "/api/v1/incidents/1", "", &inc)
				return inc.SLABreaches == 1
			})
		}
		if code := d.do("POST", "/api/v1/events", resolve, nil); code != 202 && code != 200 {
			t.Fatalf("resolve %d: %d", i, code)
		}
	}
	var inc triage.Incident
	d.do("GET", "/api/v1/incidents/1", "", &inc)
	var kinds []string
	for _, e := range inc.Timeline {
		if strings.HasPrefix(e.Kind, "sla_") {
			kinds = append(kinds, e.Kind)
		}
	}
	if strings.Join(kinds, ",") != "sla_warning,sla_breach" {
		t.Fatalf("SLA entries %v, want one warning then one breach", kinds)
	}
	var list struct {
		Problems []problems.Problem `json:"problems"`
		Total    int                `json:"total"`
	}
	waitUntil(t, "a problem", func() bool {
		d.do("GET", "/api/v1/problems", "", &list)
		return list.Total == 1
	})
	if p := list.Problems[0]; p.IncidentCount != 2 || p.Key != "PRB-1" {
		t.Fatalf("problem %+v", p)
	}
	waitUntil(t, "the incidents linked", func() bool {
		var two triage.Incident
		d.do("GET", "/api/v1/incidents/2", "", &two)
		return two.ProblemID != nil && *two.ProblemID == 1
	})
	var p problems.Problem
	if code := d.do("PATCH", "/api/v1/problems/PRB-1", `{"known_error": true, "workaround": "grow the volume", "actor": "alice"}`, &p); code != 200 ||
		p.Status != problems.StatusKnownError || p.Workaround != "grow the volume" {
		t.Fatalf("patch: %d %+v", code, p)
	}
	for path, want := range map[string]int{"/api/v1/problems/PRB-9": 404, "/api/v1/problems/x": 400, "/api/v1/problems?status=bogus": 400} {
		if code := d.do("GET", path, "", nil); code != want {
			t.Fatalf("GET %s: %d, want %d", path, code, want)
		}
	}
	if code := d.do("PATCH", "/api/v1/problems/1", `{"status": "nope"}`, nil); code != 400 {
		t.Fatalf("bad status: %d", code)
	}
	var rep kpi.Report
	d.do("GET", "/api/v1/kpi", "", &rep)
	if rep.SLABreached != 1 || rep.SLACompliance == nil || *rep.SLACompliance != 0.5 || rep.Problems == nil || rep.Problems.KnownErrors != 1 {
		t.Fatalf("kpi: breached %d compliance %v problems %+v", rep.SLABreached, rep.SLACompliance, rep.Problems)
	}
}
