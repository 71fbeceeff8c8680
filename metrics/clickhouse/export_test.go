package clickhouse

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/internal/svctest"
	"github.com/triage-dev/triage/metrics/kpi"
)

// The exporter keeps everything while ClickHouse is unreachable, writes it
// once it is back, sends nothing twice in effect when its cursor is lost
// after a write (a crash), and the ClickHouse figures agree with the KPI
// endpoint's.
func TestExporterDownThenUpAndAgreesWithKPI(t *testing.T) {
	addr, conn, db := testDB(t)
	ctx := context.Background()
	svc := svctest.Start(t, "")
	svc.Fire(t, "alertname", "HighLatency", "service", "orders", "severity", "critical")
	svc.Fire(t, "alertname", "HighLatency", "service", "orders", "severity", "critical") // a duplicate
	svc.Fire(t, "alertname", "DiskFull", "service", "db", "severity", "warning")
	time.Sleep(1100 * time.Millisecond) // whole seconds: ClickHouse keeps DateTime
	if err := svc.Acknowledge(ctx, 1, "alice"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	svc.ResolveAlert(t, "alertname", "HighLatency", "service", "orders", "severity", "critical")
	if err := svc.Feedback(ctx, 1, triage.Feedback{Score: 4, Comment: "quick", Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	cursor := filepath.Join(t.TempDir(), "clickhouse-export.json")
	down := ExporterOptions{Writer: Options{Addr: "127.0.0.1:1", Database: db, DialTimeout: time.Second},
		Source: svc.Store, CursorPath: cursor, Weights: map[string]float64{"orders": 3}}
	ex, err := NewExporter(down)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // each round tries to connect again (it used to panic on the second)
		if _, err := ex.Round(ctx); err == nil || !IsRetryable(err) {
			t.Fatalf("round with ClickHouse down: %v, want a retryable error", err)
		}
	}
	if _, err := os.Stat(cursor); err == nil {
		t.Fatal("the cursor moved although nothing was written")
	}

	up := down
	up.Writer.Addr = addr
	export := func() {
		t.Helper()
		ex, err := NewExporter(up)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if ex.w != nil {
				_ = ex.w.Close()
			}
		}()
		for {
			more, err := ex.Round(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !more {
				return
			}
		}
	}
	export()
	changes, err := svc.Store.Changes(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		if n := count(t, conn, "SELECT count() FROM "+db+".incidents FINAL"); n != 2 {
			t.Fatalf("%d incidents, want 2", n)
		}
		if n := count(t, conn, "SELECT count() FROM "+db+".incident_changes FINAL"); n != uint64(len(changes)) {
			t.Fatalf("%d changes, want %d", n, len(changes))
		}
		if n := count(t, conn, "SELECT count() FROM "+db+".events FINAL"); n != 4 {
			t.Fatalf("%d events, want 4 (duplicates and the resolution included)", n)
		}
		if n := count(t, conn, "SELECT count() FROM "+db+".feedback FINAL WHERE score = 4 AND comment = 'quick'"); n != 1 {
			t.Fatalf("%d feedback rows, want 1", n)
		}
		if n := count(t, conn, "SELECT count() FROM "+db+".incidents FINAL WHERE status = 'resolved' AND id = 1"); n != 1 {
			t.Fatal("incident 1 is not resolved in ClickHouse: the latest version did not win")
		}
	}
	check()
	// A crash after the write, before the cursor was saved: everything is
	// sent again, and nothing counts twice.
	if err := os.Remove(cursor); err != nil {
		t.Fatal(err)
	}
	export()
	check()

	// The KPI endpoint and ClickHouse agree.
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	rep, err := kpi.Compute(svc.Store.EachIncident, from, to, time.Now(), kpi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mtta, mttr float64
	var opened, events, alerts uint64
	q := "SELECT avgIf(toUInt32(acknowledged_at) - toUInt32(opened_at), acknowledged_at > toDateTime(0)), " +
		"avgIf(toUInt32(resolved_at) - toUInt32(opened_at), resolved_at > toDateTime(0)), count(), sum(event_count), sum(alert_count) " +
		"FROM " + db + ".incidents FINAL"
	if err := conn.QueryRow(ctx, q).Scan(&mtta, &mttr, &opened, &events, &alerts); err != nil {
		t.Fatal(err)
	}
	near := func(name string, ch float64, api *float64) {
		t.Helper()
		if api == nil || math.Abs(ch-*api) > 1 { // ClickHouse keeps whole seconds
			t.Errorf("%s: ClickHouse %v, KPI endpoint %v", name, ch, api)
		}
	}
	near("MTTA", mtta, rep.MTTASeconds)
	near("MTTR", mttr, rep.MTTRSeconds)
	if int(opened) != rep.Opened || int64(events) != rep.Events || int64(alerts) != rep.Alerts {
		t.Fatalf("ClickHouse opened %d events %d alerts %d; KPI %d %d %d", opened, events, alerts, rep.Opened, rep.Events, rep.Alerts)
	}
}

// Repeated notifications change an incident's counts without a timeline
// entry: the periodic refresh exports them, and the newest version wins.
func TestExporterRefreshesCounts(t *testing.T) {
	addr, conn, db := testDB(t)
	ctx := context.Background()
	svc := svctest.Start(t, "")
	svc.Fire(t, "alertname", "HighLatency", "service", "orders")
	ex, err := NewExporter(ExporterOptions{Writer: Options{Addr: addr, Database: db}, Source: svc.Store,
		CursorPath: filepath.Join(t.TempDir(), "cursor.json"), Refresh: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ex.w.Close() }()
	round := func() {
		t.Helper()
		if err := svc.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := ex.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	round()
	for range 3 {
		time.Sleep(2 * time.Millisecond) // a later UpdatedAt
		svc.Fire(t, "alertname", "HighLatency", "service", "orders")
	}
	round()
	var events, count uint64
	if err := conn.QueryRow(ctx, "SELECT any(event_count) FROM "+db+".incidents FINAL").Scan(&events); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT any(count) FROM "+db+".alerts FINAL").Scan(&count); err != nil {
		t.Fatal(err)
	}
	if events != 4 || count != 4 {
		t.Fatalf("event_count %d, alert count %d in ClickHouse; want 4 and 4", events, count)
	}
}

// SLA rows come from the SLA tracker's entries only, read with its parser
// (policy names may hold spaces).
func TestSLARow(t *testing.T) {
	inc := &triage.Incident{ID: 7, Priority: "P2", Service: "orders"}
	e := triage.TimelineEntry{Seq: 9, Kind: triage.KindSLAWarning, Actor: "sla",
		Message: "SLA warning: resolve target 4h 75% used (policy gold tier, calendar eu-business), due Mon 2026-11-30 12:00 CET"}
	r, ok := slaRow(inc, e)
	want := SLAEventRow{IncidentID: 7, Seq: 9, Kind: "warning", Target: "resolve", Policy: "gold tier", Fraction: 0.75, Priority: "P2", Service: "orders"}
	if !ok || r != want {
		t.Fatalf("row %+v, %v; want %+v", r, ok, want)
	}
	e.Actor = "alice" // not the tracker's
	if _, ok := slaRow(inc, e); ok {
		t.Fatal("an SLA-looking entry by someone else became a row")
	}
}
