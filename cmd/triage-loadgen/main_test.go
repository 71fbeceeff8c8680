package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDaemon counts what it is sent and answers each request with the
// status status(n) gives for the n-th request (from 1).
type fakeDaemon struct {
	t        *testing.T
	srv      *httptest.Server
	status   func(n int64) int
	token    string
	requests atomic.Int64
	alerts   atomic.Int64
	mu       sync.Mutex
	paths    map[string]int
	badBody  string
}

func newFakeDaemon(t *testing.T, status func(n int64) int) *fakeDaemon {
	f := &fakeDaemon{t: t, status: status, paths: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" {
		fmt.Fprintf(w, "# HELP go_memstats_heap_inuse_bytes x\n# TYPE go_memstats_heap_inuse_bytes gauge\n"+
			"go_memstats_heap_inuse_bytes 1.048576e+07\nprocess_resident_memory_bytes 3.3554432e+07\n"+
			"triage_correlate_alerts_live 42\n"+
			"triage_ingest_events_received_total{source=\"alertmanager\"} %d\n"+
			"triage_ingest_events_received_total{source=\"api\"} 5\n", f.alerts.Load())
		return
	}
	body, _ := io.ReadAll(r.Body)
	n := f.requests.Add(1)
	f.mu.Lock()
	f.paths[r.Method+" "+r.URL.Path]++
	bad := func(msg string) {
		if f.badBody == "" {
			f.badBody = msg
		}
	}
	if r.Header.Get("Content-Type") != "application/json" {
		bad("content type " + r.Header.Get("Content-Type"))
	}
	if got := r.Header.Get("Authorization"); f.token != "" && got != "Bearer "+f.token {
		bad("authorization " + got)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		bad(err.Error())
	}
	f.mu.Unlock()
	switch v := v.(type) {
	case []any:
		f.alerts.Add(int64(len(v)))
	case map[string]any:
		if as, ok := v["alerts"].([]any); ok {
			f.alerts.Add(int64(len(as)))
		} else {
			f.alerts.Add(1)
		}
	}
	code := f.status(n)
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":"status %d"}`, code)
}

func (f *fakeDaemon) check() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.badBody != "" {
		f.t.Errorf("the daemon got a bad request: %s", f.badBody)
	}
}

func always(code int) func(int64) int { return func(int64) int { return code } }

func runLoadgen(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if a := strings.Join(args, " "); !strings.Contains(a, "--unique") && !strings.Contains(a, "--duplicate-ratio") {
		args = append(args, "--unique", "50") // the default's 10000 bodies take long to build under -race
	}
	code := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func decodeReport(t *testing.T, out string) map[string]any {
	t.Helper()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one line of JSON, got %q", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	for _, k := range []string{"format", "alerts_per_request", "concurrency", "rate", "duration_s", "requests", "alerts",
		"rps", "alerts_per_s", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report has no %q: %s", k, out)
		}
	}
	return m
}

func TestRunSendsEachFormatToItsEndpoint(t *testing.T) {
	for _, tc := range []struct{ format, path string }{
		{formatWebhook, "POST /api/v1/alerts"},
		{formatV2, "POST /api/v2/alerts"},
		{formatEvents, "POST /api/v1/events"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			f := newFakeDaemon(t, always(http.StatusOK))
			f.token = "s3cret"
			code, out, errOut := runLoadgen(t, map[string]string{"TRIAGE_AUTH_TOKEN": "s3cret"},
				"--url", f.srv.URL+"/", "--format", tc.format, "--requests", "60", "--alerts-per-request", "5",
				"--concurrency", "4", "--unique", "100", "--output", "json")
			if code != 0 {
				t.Fatalf("exit %d; stdout %s; stderr %s", code, out, errOut)
			}
			f.check()
			if f.paths[tc.path] != 60 || len(f.paths) != 1 {
				t.Errorf("the daemon got %v, want 60 × %s", f.paths, tc.path)
			}
			if f.alerts.Load() != 300 {
				t.Errorf("the daemon got %d alerts, want 300", f.alerts.Load())
			}
			m := decodeReport(t, out)
			if m["requests"] != 60.0 || m["alerts"] != 300.0 || m["errors"] != 0.0 || m["format"] != tc.format {
				t.Errorf("report %s: want 60 requests, 300 alerts, no errors", out)
			}
			// 300 alerts over 100 distinct: two thirds are duplicates.
			if r := m["duplicate_ratio"].(float64); r < 0.666 || r > 0.667 {
				t.Errorf("duplicate ratio %v, want 2/3", r)
			}
			if strings.Contains(out+errOut, "s3cret") {
				t.Errorf("the token was printed")
			}
		})
	}
}

func TestRunCountsErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    func(int64) int
		args      []string
		wantCode  int
		want4, w5 int
	}{
		{"all 500", always(500), nil, 1, 0, 40},
		{"all 500, allowed", always(500), []string{"--allow-errors"}, 0, 0, 40},
		{"one in four 400", func(n int64) int {
			if n%4 == 0 {
				return 400
			}
			return 200
		}, nil, 1, 10, 0},
		{"503 and 429", func(n int64) int {
			if n%2 == 0 {
				return 503
			}
			return 429
		}, nil, 1, 20, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDaemon(t, tc.status)
			args := append([]string{"--url", f.srv.URL, "--requests", "40", "--concurrency", "1", "--output", "json"}, tc.args...)
			code, out, errOut := runLoadgen(t, nil, args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr %s", code, tc.wantCode, errOut)
			}
			m := decodeReport(t, out)
			if m["status_4xx"] != float64(tc.want4) || m["status_5xx"] != float64(tc.w5) ||
				m["errors"] != float64(tc.want4+tc.w5) || m["requests"] != 40.0 ||
				m["alerts"] != float64(40-tc.want4-tc.w5) {
				t.Errorf("report %s: want %d 4xx and %d 5xx of 40", out, tc.want4, tc.w5)
			}
		})
	}
}

func TestRunTextReportShowsErrors(t *testing.T) {
	f := newFakeDaemon(t, always(http.StatusServiceUnavailable))
	code, out, _ := runLoadgen(t, nil, "--url", f.srv.URL, "--requests", "5", "--concurrency", "2")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"requests    5 in", "5xx 5", `5 × 503: {"error":"status 503"}`, "latency     p50"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestRunCountsTransportErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	code, out, _ := runLoadgen(t, nil, "--url", "http://"+addr, "--requests", "3", "--concurrency", "1", "--output", "json")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	m := decodeReport(t, out)
	if m["transport_errors"] != 3.0 || m["errors"] != 3.0 || m["alerts"] != 0.0 {
		t.Errorf("report %s: want 3 transport errors", out)
	}
}

func TestRunPacedForADuration(t *testing.T) {
	f := newFakeDaemon(t, always(http.StatusOK))
	start := time.Now()
	code, out, errOut := runLoadgen(t, nil, "--url", f.srv.URL, "--rate", "100", "--duration", "500ms",
		"--concurrency", "4", "--output", "json")
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d; stderr %s", code, errOut)
	}
	m := decodeReport(t, out)
	// The schedule has 50 requests due in the first 500ms; on a busy machine
	// fewer may have been sent, never more.
	n := m["requests"].(float64)
	if n > 50 || n < 10 || f.requests.Load() != int64(n) {
		t.Errorf("%v requests reported, %d received, want up to 50", n, f.requests.Load())
	}
	if took < 450*time.Millisecond {
		t.Errorf("took %v, want about 500ms", took)
	}
	if m["rate"] != 100.0 {
		t.Errorf("rate %v, want 100", m["rate"])
	}
}

func TestRunReportsWhenItCannotKeepUp(t *testing.T) {
	slow := newFakeDaemon(t, always(http.StatusOK))
	slowSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		slow.serve(w, r)
	}))
	defer slowSrv.Close()
	// One sender and 50ms per request can do 20/s, not 200/s.
	code, out, _ := runLoadgen(t, nil, "--url", slowSrv.URL, "--rate", "200", "--requests", "10", "--concurrency", "1")
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if !strings.Contains(out, "COULD NOT KEEP UP") {
		t.Errorf("report does not say the generator fell behind:\n%s", out)
	}
}

func TestRunWarmupIsNotCounted(t *testing.T) {
	f := newFakeDaemon(t, always(http.StatusOK))
	code, out, _ := runLoadgen(t, nil, "--url", f.srv.URL, "--warmup", "100ms", "--requests", "10",
		"--concurrency", "2", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	m := decodeReport(t, out)
	if m["requests"] != 10.0 || f.requests.Load() <= 10 {
		t.Errorf("report says %v requests, the daemon got %d: want 10 measured after a warmup", m["requests"], f.requests.Load())
	}
}

func TestRunScrapesMetrics(t *testing.T) {
	f := newFakeDaemon(t, always(http.StatusOK))
	code, out, errOut := runLoadgen(t, nil, "--url", f.srv.URL, "--requests", "10", "--alerts-per-request", "3",
		"--metrics", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d; stderr %s", code, errOut)
	}
	m := decodeReport(t, out)
	got, _ := m["metrics"].(map[string]any)
	want := map[string]float64{
		"process_resident_memory_bytes":       32 << 20,
		"go_memstats_heap_inuse_bytes":        10 << 20,
		"triage_correlate_alerts_live":        42,
		"triage_ingest_events_received_total": 30, // the increase during the run
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("metrics[%s] = %v, want %v (report %s)", k, got[k], v, out)
		}
	}
	if _, ok := got["triage_correlate_duplicates_total"]; ok {
		t.Errorf("a metric the daemon does not export was reported")
	}

	code, out, _ = runLoadgen(t, nil, "--url", f.srv.URL, "--requests", "2", "--metrics")
	if code != 0 || !strings.Contains(out, "rss 32.0 MiB  heap in use 10.0 MiB  live alerts 42") {
		t.Errorf("exit %d, text report:\n%s", code, out)
	}
}

func TestPrebuildOrNot(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mb       string
		prebuilt bool
	}{{"fits", "64", true}, {"too big", "0", false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDaemon(t, always(http.StatusOK))
			code, out, _ := runLoadgen(t, nil, "--url", f.srv.URL, "--requests", "30", "--unique", "20",
				"--alerts-per-request", "2", "--prebuild-mb", tc.mb)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			f.check()
			if got := strings.Contains(out, "10 distinct bodies prebuilt"); got != tc.prebuilt {
				t.Errorf("prebuilt %v, want %v:\n%s", got, tc.prebuilt, out)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	code, out, _ := runLoadgen(t, nil, "--dry-run", "--requests", "200", "--alerts-per-request", "3", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var m dryRunReport
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if !m.DryRun || m.Bodies != 200 || m.Alerts != 600 || m.BodiesPerS <= 0 || m.AvgBodyBytes < 1000 {
		t.Errorf("dry run report %+v", m)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown format", []string{"--format", "xml"}, "--format"},
		{"bad url", []string{"--url", "localhost:9400"}, "--url"},
		{"zero concurrency", []string{"--concurrency", "0"}, "--concurrency"},
		{"negative rate", []string{"--rate", "-1"}, "--rate"},
		{"ratio needs requests", []string{"--duplicate-ratio", "0.9"}, "--requests"},
		{"ratio or unique", []string{"--duplicate-ratio", "0.9", "--unique", "5", "--requests", "9"}, "alternatives"},
		{"bad output", []string{"--output", "yaml"}, "--output"},
		{"stray argument", []string{"now"}, "unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runLoadgen(t, nil, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q: want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}

func TestDuplicateRatioSetsUnique(t *testing.T) {
	o, err := parseFlags([]string{"--duplicate-ratio", "0.9", "--requests", "10000", "--alerts-per-request", "100"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.unique != 100000 {
		t.Errorf("unique %d, want 100000 (10%% of 1M alerts)", o.unique)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP x y
# TYPE triage_correlate_alerts_live gauge
triage_correlate_alerts_live 7
triage_correlate_alerts_live_other 100
triage_ingest_events_received_total{source="a b",x="}"} 3 1700000000000
triage_ingest_events_received_total{source="c"} 4
process_resident_memory_bytes 1.5e+06
go_memstats_heap_inuse_bytes NaN
`
	m, err := parseMetrics(strings.NewReader(text), []string{"triage_correlate_alerts_live",
		"triage_ingest_events_received_total", "process_resident_memory_bytes", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"triage_correlate_alerts_live": 7, "triage_ingest_events_received_total": 7,
		"process_resident_memory_bytes": 1.5e6}
	if len(m) != len(want) {
		t.Errorf("got %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}
