package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triage-dev/triage/internal/testenv"
)

const needServer = "a ClickHouse server: run deploy/dev/clickhouse.sh start and eval its env output"

// testDB returns the server address, a connection and the name of a fresh
// database that is dropped when the test ends.
func testDB(t testing.TB) (string, driver.Conn, string) {
	t.Helper()
	addr := testenv.RequireService(t, "CLICKHOUSE_ADDR", needServer)
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "triage_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("dropping %s: %v", db, err)
		}
		conn.Close()
	})
	return addr, conn, db
}

func count(t testing.TB, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestMigrate(t *testing.T) {
	_, conn, db := testDB(t)
	ctx := context.Background()
	v, err := ServerVersion(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, m := range Migrations {
		if m.Requires == nil || m.Requires(FeaturesOf(v)) {
			want++
		}
	}
	for run := 1; run <= 2; run++ {
		if err := Migrate(ctx, conn, db); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if n := count(t, conn, "SELECT count() FROM "+db+".schema_migrations"); n != uint64(want) {
			t.Fatalf("run %d: %d rows in schema_migrations, want %d (server %s)", run, n, want, v)
		}
	}
	n := count(t, conn, "SELECT count() FROM system.tables WHERE database = '"+db+"'")
	if n != 8 {
		t.Fatalf("%d tables in %s, want 8", n, db)
	}
	var ttl uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = '"+db+"' AND name = 'events' AND position(create_table_query, 'TTL') > 0").Scan(&ttl); err != nil {
		t.Fatal(err)
	}
	if wantTTL := FeaturesOf(v).TableTTL; (ttl == 1) != wantTTL {
		t.Fatalf("events has TTL: %v, want %v on %s", ttl == 1, wantTTL, v)
	}
}

func TestFeaturesOf(t *testing.T) {
	for _, tc := range []struct {
		version string
		ttl     bool
	}{
		{"18.16.1", false}, {"19.5.4.22", false}, {"19.6.1", true}, {"20.3.1", true}, {"24.8.4.13", true}, {"garbage", false},
	} {
		if got := FeaturesOf(ParseVersion(tc.version)).TableTTL; got != tc.ttl {
			t.Errorf("%s: TableTTL = %v, want %v", tc.version, got, tc.ttl)
		}
	}
	old := strings.Join(Statements("triage", FeaturesOf(ParseVersion("18.16.1"))), "\n")
	for _, bad := range []string{"TTL", "LowCardinality", "DateTime64", "Map(", "JSON"} {
		if strings.Contains(old, bad) {
			t.Errorf("DDL for 18.16 contains %q", bad)
		}
	}
	if cur := strings.Join(Statements("triage", AllFeatures), "\n"); !strings.Contains(cur, "MODIFY TTL received + INTERVAL") {
		t.Errorf("DDL for a current server lacks the events TTL")
	}
}

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func sampleBatch(version uint64) Batch {
	return Batch{
		Events: []EventRow{
			{Received: t0, Time: t0, Seq: 1, Source: "alertmanager", Fingerprint: "fp1", Status: "firing", Severity: "critical",
				Alertname: "HighErrorRate", Service: "orders", CI: "svc-orders", LabelKeys: []string{"alertname", "service"}, LabelValues: []string{"HighErrorRate", "orders"}},
			{Received: t0.Add(time.Second), Time: t0, Seq: 2, Source: "kafka", Fingerprint: "fp2", Status: "firing", Severity: "warning"},
		},
		Alerts: []AlertRow{{IncidentID: 1, Fingerprint: "fp1", Status: "firing", Severity: "critical", CI: "svc-orders", Service: "orders",
			Alertname: "HighErrorRate", Count: 3 * version, FirstSeen: t0, LastSeen: t0.Add(time.Minute), Version: version}},
		Incidents: []IncidentRow{{ID: 1, Key: "INC-1", Title: "orders 5xx", Status: "acknowledged", Priority: "P1", Severity: "critical",
			CI: "db-orders", Service: "orders", AssignmentGroup: "dba", AlertCount: 2, EventCount: 5 * version, OpenedAt: t0,
			AcknowledgedAt: t0.Add(90 * time.Second), ReopenCount: 0, RootCauseCI: "db-orders", ProblemID: 0, UserImpactMinutes: 12.5, Version: version}},
		Changes: []ChangeRow{
			{IncidentID: 1, Seq: 1, Time: t0, Kind: "opened", Actor: "triage", Message: "opened"},
			{IncidentID: 1, Seq: 2, Time: t0.Add(90 * time.Second), Kind: "acknowledged", Actor: "alice", Message: "on it"},
		},
		SLAEvents: []SLAEventRow{{IncidentID: 1, Seq: 1, Time: t0.Add(80 * time.Second), Policy: "p1", Target: "acknowledge", Kind: "warning",
			Fraction: 0.8, BusinessSeconds: 80, Priority: "P1", Service: "orders"}},
		Problems: []ProblemRow{{ID: 7, Key: "PRB-7", Title: "orders db saturation", Status: "open", KnownError: true, Workaround: "restart",
			RootCI: "db-orders", Signature: "sig", IncidentCount: 2, OpenedAt: t0, UpdatedAt: t0.Add(time.Hour), Version: version}},
		Feedback: []FeedbackRow{{IncidentID: 1, Seq: 1, Time: t0.Add(2 * time.Hour), Score: 4, Comment: "good grouping", Service: "orders"}},
	}
}

func openWriter(t testing.TB, addr, db string, reg prometheus.Registerer, batchRows int) *Writer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := Open(ctx, Options{Addr: addr, Database: db, Registerer: reg, BatchRows: batchRows,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestWriterRoundTrip(t *testing.T) {
	addr, conn, db := testDB(t)
	reg := prometheus.NewRegistry()
	w := openWriter(t, addr, db, reg, 1) // one row per INSERT: exercises splitting
	t.Logf("server %s", w.ServerVersion())
	ctx := context.Background()
	if err := w.Write(ctx, sampleBatch(1)); err != nil {
		t.Fatal(err)
	}
	for tbl, want := range map[string]uint64{"events": 2, "alerts": 1, "incidents": 1, "incident_changes": 2, "sla_events": 1, "problems": 1, "feedback": 1} {
		if n := count(t, conn, "SELECT count() FROM "+db+"."+tbl+" FINAL"); n != want {
			t.Errorf("%s: %d rows, want %d", tbl, n, want)
		}
		if got := testutil.ToFloat64(w.m.rows.WithLabelValues(tbl)); got != float64(want) {
			t.Errorf("rows_written_total{table=%q} = %v, want %d", tbl, got, want)
		}
	}

	var (
		key, status, prio string
		ack, resolved     time.Time
		impact            float64
		events            uint64
	)
	err := conn.QueryRow(ctx, "SELECT key, status, priority, acknowledged_at, resolved_at, user_impact_minutes, event_count FROM "+db+".incidents FINAL WHERE id = 1").
		Scan(&key, &status, &prio, &ack, &resolved, &impact, &events)
	if err != nil {
		t.Fatal(err)
	}
	if key != "INC-1" || status != "acknowledged" || prio != "P1" || !ack.Equal(t0.Add(90*time.Second)) || resolved.Unix() != 0 || impact != 12.5 || events != 5 {
		t.Errorf("incident read back as %s %s %s ack=%v resolved=%v impact=%v events=%d", key, status, prio, ack, resolved, impact, events)
	}
	var keys, values []string
	if err := conn.QueryRow(ctx, "SELECT label_keys, label_values FROM "+db+".events FINAL WHERE seq = 1").Scan(&keys, &values); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys, values) != "[alertname service] [HighErrorRate orders]" {
		t.Errorf("labels read back as %v %v", keys, values)
	}
	var knownError, score uint8
	var fraction float64
	if err := conn.QueryRow(ctx, "SELECT known_error FROM "+db+".problems FINAL WHERE id = 7").Scan(&knownError); err != nil || knownError != 1 {
		t.Errorf("known_error = %d, %v", knownError, err)
	}
	if err := conn.QueryRow(ctx, "SELECT score FROM "+db+".feedback FINAL").Scan(&score); err != nil || score != 4 {
		t.Errorf("score = %d, %v", score, err)
	}
	if err := conn.QueryRow(ctx, "SELECT fraction FROM "+db+".sla_events FINAL").Scan(&fraction); err != nil || fraction != 0.8 {
		t.Errorf("fraction = %v, %v", fraction, err)
	}
}

func TestWriterIdempotent(t *testing.T) {
	addr, conn, db := testDB(t)
	w := openWriter(t, addr, db, nil, 0)
	ctx := context.Background()
	// The same batch twice (a retry after a lost acknowledgement), then a newer
	// version of the versioned rows, then the older one again, late.
	for _, v := range []uint64{1, 1, 2, 1} {
		if err := w.Write(ctx, sampleBatch(v)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]uint64{"events": 2, "alerts": 1, "incidents": 1, "incident_changes": 2, "sla_events": 1, "problems": 1, "feedback": 1}
	for tbl, n := range want {
		if got := count(t, conn, "SELECT count() FROM "+db+"."+tbl+" FINAL"); got != n {
			t.Errorf("%s FINAL: %d rows, want %d", tbl, got, n)
		}
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+db+"."+tbl+" FINAL"); err != nil {
			t.Fatal(err)
		}
		if got := count(t, conn, "SELECT count() FROM "+db+"."+tbl); got != n {
			t.Errorf("%s after OPTIMIZE FINAL: %d rows, want %d", tbl, got, n)
		}
	}
	if n := count(t, conn, "SELECT event_count FROM "+db+".incidents FINAL WHERE id = 1"); n != 10 {
		t.Errorf("incident event_count %d, want 10 (the row of version 2)", n)
	}
	if n := count(t, conn, "SELECT argMax(count, version) FROM "+db+".alerts WHERE incident_id = 1"); n != 6 {
		t.Errorf("alert count %d, want 6 (the row of version 2)", n)
	}
}

func TestWriterUnreachable(t *testing.T) {
	ln := "127.0.0.1:1" // nothing listens on port 1
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, Options{Addr: ln, DialTimeout: time.Second})
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if !IsRetryable(err) {
		t.Fatalf("error not retryable: %v", err)
	}
}

func TestWriterBadDataNotRetryable(t *testing.T) {
	addr, conn, db := testDB(t)
	w := openWriter(t, addr, db, nil, 0)
	if err := conn.Exec(context.Background(), "DROP TABLE "+db+".feedback"); err != nil {
		t.Fatal(err)
	}
	err := w.Write(context.Background(), Batch{Feedback: []FeedbackRow{{IncidentID: 1}}})
	if err == nil || IsRetryable(err) {
		t.Fatalf("write to a missing table: %v, retryable %v", err, IsRetryable(err))
	}
}

// BenchmarkWriterIncidentChanges writes batches of 50k incident_changes rows.
func BenchmarkWriterIncidentChanges(b *testing.B) {
	addr, _, db := testDB(b)
	w := openWriter(b, addr, db, nil, 50000)
	const n = 50000
	rows := make([]ChangeRow, n)
	for i := range rows {
		rows[i] = ChangeRow{IncidentID: uint64(i / 10), Seq: uint64(i % 10), Time: t0.Add(time.Duration(i) * time.Second),
			Kind: "comment", Actor: "alice", Message: "rolled back the deployment of orders-api to v1.42"}
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := w.Write(ctx, Batch{Changes: rows}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rows/s")
}
