package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/ingest"
	"github.com/triage-dev/triage/internal/httpx"
	"github.com/triage-dev/triage/internal/server"
	"github.com/triage-dev/triage/internal/testenv"
)

// start is the test clock's first reading: after the fixtures' startsAt,
// before the Prometheus fixture's endsAt.
var start = time.Date(2026, 11, 24, 23, 58, 0, 0, time.UTC)

type options struct {
	Pprof        bool
	Token        string
	MaxBodyBytes int64
	CMDB         server.CMDB
}

// env is a real server wired as internal/app wires it: a bbolt store in a
// temporary directory, the correlation service running, the ingest
// handlers and the server on a fresh registry, served over loopback.
type env struct {
	t     *testing.T
	url   string
	token string
	store *correlate.Store
	svc   *correlate.Service
	srv   *server.Server
	clock *testenv.Clock
	logs  *testenv.SyncBuffer
	// stopService stops the correlation service, as at shutdown.
	stopService func()
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	e := &env{t: t, token: o.Token, clock: testenv.NewClock(start), logs: &testenv.SyncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()

	dataDir := t.TempDir()
	store, err := correlate.OpenStore(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	e.store = store
	svc, err := correlate.NewService(correlate.ServiceOptions{
		Store:  store,
		WALDir: correlate.WALDir(dataDir),
		NewEngine: func() *correlate.Engine {
			return correlate.NewEngine(correlate.Options{
				ResolveAfter: 5 * time.Minute,
				ReopenWindow: 30 * time.Minute,
			}, correlate.NewLabelGrouper([]string{"alertname", "service"}, 10*time.Minute))
		},
		Now:      e.clock.Now,
		Logger:   log.With("component", "correlate"),
		Registry: reg,
		// Keep the event log, so that tests can see what was stored.
		EventRetention: 7 * 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	e.stopService = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("service: %v", err)
			}
		})
	}
	t.Cleanup(e.stopService)

	ing := ingest.NewHTTP(ingest.HTTPOptions{
		Sink:         svc,
		MaxBodyBytes: o.MaxBodyBytes,
		Now:          e.clock.Now,
		Logger:       log.With("component", "ingest"),
	}, ingest.NewMetrics(reg))
	e.srv = server.New(server.Options{
		Ingest:    ing,
		Incidents: svc,
		Reader:    store,
		CMDB:      o.CMDB,
		Token:     o.Token,
		Pprof:     o.Pprof,
		Ready:     svc.Ready,
		Logger:    log.With("component", "http"),
		Registry:  reg,
		Gatherer:  reg,
	})
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	e.url = ts.URL

	deadline := time.Now().Add(5 * time.Second)
	for !svc.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("correlation service not ready after 5s")
		}
		time.Sleep(time.Millisecond)
	}
	return e
}

// do sends a request with the env's token, if any, and reads the response.
// stored returns the store once it shows every acknowledged write.
func (e *env) stored() *correlate.Store {
	e.t.Helper()
	if err := e.svc.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return e.store
}

func (e *env) do(method, path, body string) (*http.Response, []byte) {
	e.t.Helper()
	h := http.Header{}
	if e.token != "" {
		h.Set("Authorization", "Bearer "+e.token)
	}
	return e.doHeader(method, path, body, h)
}

func (e *env) doHeader(method, path, body string, h http.Header) (*http.Response, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// ok sends a request that must succeed with 200 and decodes its body.
func (e *env) ok(method, path, body string, v any) {
	e.t.Helper()
	resp, b := e.do(method, path, body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

func (e *env) incident(ref string) triage.Incident {
	e.t.Helper()
	var inc triage.Incident
	e.ok("GET", "/api/v1/incidents/"+ref, "", &inc)
	return inc
}

func (e *env) list(query string) server.IncidentList {
	e.t.Helper()
	var l server.IncidentList
	e.ok("GET", "/api/v1/incidents"+query, "", &l)
	return l
}

// checkError checks an error response: status, JSON body {"error", "status"}
// and a message containing want.
func checkError(t *testing.T, resp *http.Response, body []byte, code int, want string) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, code, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e httpx.Error
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %s is not {\"error\", \"status\"}: %v", body, err)
	}
	if e.Status != code {
		t.Errorf("body status %d, want %d", e.Status, code)
	}
	if e.Error == "" || !strings.Contains(e.Error, want) {
		t.Errorf("error %q does not contain %q", e.Error, want)
	}
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBadInputIsRejectedAndNothingStored(t *testing.T) {
	const limit = 2048
	e := newEnv(t, options{MaxBodyBytes: limit})
	big := `[{"labels":{"alertname":"A","pad":"` + strings.Repeat("x", limit) + `"}}]`
	goodAndBad := `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"Good","service":"orders"}},` +
		`{"status":"firing","labels":{"alertname":"Bad","":"x"}}]}`
	cases := []struct {
		name         string
		method, path string
		body         string
		code         int
		want         string // in the error message
		allow        string // the Allow header of a 405
	}{
		{"webhook malformed JSON", "POST", "/api/v1/alerts", `{"version":"4","alerts":[}`, 400, "malformed JSON at byte", ""},
		{"webhook truncated JSON", "POST", "/api/v1/alerts", `{"version":"4","alerts":[`, 400, "truncated JSON", ""},
		{"webhook labels as array", "POST", "/api/v1/alerts", `{"version":"4","alerts":[{"labels":["a"]}]}`, 400, "alerts[0].labels: expected an object of strings", ""},
		{"webhook label value as number", "POST", "/api/v1/alerts", `{"version":"4","alerts":[{"labels":{"code":500}}]}`, 400, "alerts[0].labels.code: expected a string", ""},
		{"webhook startsAt as number", "POST", "/api/v1/alerts", `{"version":"4","alerts":[{"labels":{"a":"b"},"startsAt":0}]}`, 400, "alerts[0].startsAt: expected an RFC 3339 time string", ""},
		{"webhook empty body", "POST", "/api/v1/alerts", ``, 400, "body: empty", ""},
		{"webhook invalid UTF-8", "POST", "/api/v1/alerts", "{\"version\":\"4\",\"alerts\":[{\"labels\":{\"a\":\"\xff\"}}]}", 400, "not valid UTF-8", ""},
		{"webhook version 3", "POST", "/api/v1/alerts", `{"version":"3","alerts":[]}`, 400, `version "3" is not supported`, ""},
		{"webhook without alerts", "POST", "/api/v1/alerts", `{"version":"4"}`, 400, "alerts: missing", ""},
		{"webhook trailing data", "POST", "/api/v1/alerts", `{"version":"4","alerts":[]} {}`, 400, "unexpected data after the JSON value", ""},
		{"webhook one bad alert rejects all", "POST", "/api/v1/alerts", goodAndBad, 400, `alerts[1]: invalid event: labels: invalid label name ""`, ""},
		{"v2 alerts object", "POST", "/api/v2/alerts", `{"labels":{"a":"b"}}`, 400, "want a JSON array of alerts", ""},
		{"v2 alerts over the body limit", "POST", "/api/v2/alerts", big, 413, "larger than the limit of 2048 bytes", ""},
		{"v2 alerts ends before start", "POST", "/api/v2/alerts", `[{"labels":{"a":"b"},"startsAt":"2026-11-24T23:00:00Z","endsAt":"2026-11-24T22:00:00Z"}]`, 400, "alerts[0]: invalid event: ends_at", ""},
		{"events unknown field", "POST", "/api/v1/events", `{"labels":{"a":"b"},"prio":"P1"}`, 400, `unknown field "prio"`, ""},
		{"events whitespace body", "POST", "/api/v1/events", " \n\t ", 400, "body: empty", ""},
		{"events over the body limit", "POST", "/api/v1/events", big, 413, "larger than the limit", ""},
		{"events without labels", "POST", "/api/v1/events", `[{"labels":{}}]`, 400, "events[0]: invalid event: labels", ""},
		{"unknown path", "GET", "/api/v1/nothing", ``, 404, "no such endpoint: GET /api/v1/nothing", ""},
		{"unknown version", "POST", "/api/v3/alerts", `[]`, 404, "no such endpoint", ""},
		{"root", "GET", "/", ``, 404, "see /api/v1/openapi.yaml", ""},
		{"GET on the webhook", "GET", "/api/v1/alerts", ``, 405, "method GET not allowed", "POST"},
		{"DELETE on incidents", "DELETE", "/api/v1/incidents", ``, 405, "allowed: GET, HEAD", "GET, HEAD"},
		{"POST on an incident", "POST", "/api/v1/incidents/1", `{}`, 405, "not allowed", "GET, HEAD"},
		{"GET on acknowledge", "GET", "/api/v1/incidents/1/acknowledge", ``, 405, "not allowed", "POST"},
		{"PUT on healthz", "PUT", "/healthz", ``, 405, "not allowed", "GET, HEAD"},
		{"incident id not a number", "GET", "/api/v1/incidents/abc", ``, 400, `incident reference "abc"`, ""},
		{"incident id zero", "GET", "/api/v1/incidents/0", ``, 400, `incident reference "0"`, ""},
		{"incident id negative", "POST", "/api/v1/incidents/-1/acknowledge", ``, 400, `incident reference "-1"`, ""},
		{"unknown incident", "GET", "/api/v1/incidents/INC-999", ``, 404, "INC-999: incident not found", ""},
		{"acknowledge unknown incident", "POST", "/api/v1/incidents/999/acknowledge", ``, 404, "INC-999", ""},
		{"resolve unknown incident", "POST", "/api/v1/incidents/999/resolve", `{"note":"x"}`, 404, "INC-999", ""},
		{"comment unknown incident", "POST", "/api/v1/incidents/999/comments", `{"text":"x"}`, 404, "INC-999", ""},
		{"comment without text", "POST", "/api/v1/incidents/1/comments", `{"actor":"alice"}`, 400, "text: required", ""},
		{"comment with blank text", "POST", "/api/v1/incidents/1/comments", `{"text":"  \n"}`, 400, "text: required", ""},
		{"comment without body", "POST", "/api/v1/incidents/1/comments", ``, 400, "text: required", ""},
		{"acknowledge unknown field", "POST", "/api/v1/incidents/1/acknowledge", `{"actor":"alice","reason":"x"}`, 400, `unknown field "reason"`, ""},
		{"resolve body as array", "POST", "/api/v1/incidents/1/resolve", `["x"]`, 400, "body: want {", ""},
		{"resolve malformed body", "POST", "/api/v1/incidents/1/resolve", `{"note":`, 400, "body: want {", ""},
		{"resolve trailing data", "POST", "/api/v1/incidents/1/resolve", `{"note":"x"} {"note":"y"}`, 400, "unexpected data after the JSON object", ""},
		{"comment invalid UTF-8", "POST", "/api/v1/incidents/1/comments", "{\"text\":\"\xff\"}", 400, "not valid UTF-8", ""},
		{"actor too long", "POST", "/api/v1/incidents/1/acknowledge", `{"actor":"` + strings.Repeat("a", 201) + `"}`, 400, "actor: longer than 200 bytes", ""},
		{"action body too large", "POST", "/api/v1/incidents/1/comments", `{"text":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "larger than the limit", ""},
		{"list bad status", "GET", "/api/v1/incidents?status=closed", ``, 400, `status: "closed"`, ""},
		{"list limit zero", "GET", "/api/v1/incidents?limit=0", ``, 400, `limit: "0"`, ""},
		{"list limit too big", "GET", "/api/v1/incidents?limit=1001", ``, 400, `limit: "1001"`, ""},
		{"list limit not a number", "GET", "/api/v1/incidents?limit=ten", ``, 400, `limit: "ten"`, ""},
		{"list bad before", "GET", "/api/v1/incidents?before=yesterday", ``, 400, "before:", ""},
		{"CIs limit too big", "GET", "/api/v1/cmdb/cis?limit=10001", ``, 400, `limit: "10001" is not a number from 1 to 10000`, ""},
		{"CIs negative offset", "GET", "/api/v1/cmdb/cis?offset=-1", ``, 400, `offset: "-1"`, ""},
		{"log templates bad limit", "GET", "/api/v1/log-templates?limit=x", ``, 400, `limit: "x"`, ""},
		{"log templates bad error flag", "GET", "/api/v1/log-templates?error=maybe", ``, 400, "error: want true or false", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do(tc.method, tc.path, tc.body)
			checkError(t, resp, body, tc.code, tc.want)
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}

	// Nothing of it reached the state.
	evs, err := e.stored().Events(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Errorf("%d events stored after bad input: %+v", len(evs), evs)
	}
	if l := e.list(""); len(l.Incidents) != 0 {
		t.Errorf("incidents after bad input: %+v", l.Incidents)
	}

	// The server still takes good input.
	var acc map[string]int
	e.ok("POST", "/api/v1/alerts", fixture(t, "alertmanager-firing.json"), &acc)
	if acc["accepted"] != 2 {
		t.Errorf("accepted = %v, want 2", acc)
	}
	evs, err = e.stored().Events(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Errorf("%d events stored, want 2", len(evs))
	}
	if l := e.list(""); len(l.Incidents) != 1 {
		t.Errorf("%d incidents, want 1", len(l.Incidents))
	}
}

func TestWebhookToIncident(t *testing.T) {
	e := newEnv(t, options{})
	webhook := fixture(t, "alertmanager-firing.json")
	var acc map[string]int
	e.ok("POST", "/api/v1/alerts", webhook, &acc)
	if acc["accepted"] != 2 {
		t.Fatalf("accepted = %v, want 2", acc)
	}
	e.clock.Advance(time.Minute)
	// Alertmanager repeats the notification: duplicates, not new alerts.
	e.ok("POST", "/api/v1/alerts", webhook, nil)

	// The fields DESIGN.md promises, present in the JSON itself.
	resp, raw := e.do("GET", "/api/v1/incidents/1", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET incident: %d %s", resp.StatusCode, raw)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "key", "title", "status", "priority", "severity", "ci", "service", "alert_count",
		"event_count", "opened_at", "acknowledged_at", "resolved_at", "alerts", "root_cause", "explanation", "timeline",
		"ticket", "problem_id"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("incident JSON has no %q: %s", k, raw)
		}
	}
	for _, k := range []string{"acknowledged_at", "resolved_at", "ticket", "problem_id"} {
		if string(fields[k]) != "null" {
			t.Errorf("%s = %s, want null", k, fields[k])
		}
	}
	var alerts []map[string]json.RawMessage
	if err := json.Unmarshal(fields["alerts"], &alerts); err != nil {
		t.Fatal(err)
	}
	for i, a := range alerts {
		for _, k := range []string{"fingerprint", "status", "labels", "count", "first_seen", "last_seen"} {
			if _, ok := a[k]; !ok {
				t.Errorf("alert %d has no %q", i, k)
			}
		}
	}
	var rc map[string]json.RawMessage
	if err := json.Unmarshal(fields["root_cause"], &rc); err != nil || rc["ci"] == nil || rc["reason"] == nil {
		t.Errorf("root_cause = %s, want ci and reason", fields["root_cause"])
	}

	// Their values.
	byID, byKey, byLowerKey := e.incident("1"), e.incident("INC-1"), e.incident("inc-1")
	if !equalJSON(t, byID, byKey) || !equalJSON(t, byID, byLowerKey) {
		t.Errorf("GET by 1, INC-1 and inc-1 differ")
	}
	inc := byID
	want := triage.Incident{
		ID: 1, Key: "INC-1", Title: "5xx rate above 5% on orders", Status: triage.IncidentOpen,
		Priority: "P1", Severity: triage.SeverityCritical, CI: "orders-1", Service: "orders",
		AlertCount: 2, FiringCount: 2, EventCount: 4,
	}
	if inc.ID != want.ID || inc.Key != want.Key || inc.Title != want.Title || inc.Status != want.Status ||
		inc.Priority != want.Priority || inc.Severity != want.Severity || inc.CI != want.CI ||
		inc.Service != want.Service || inc.AlertCount != want.AlertCount || inc.FiringCount != want.FiringCount ||
		inc.EventCount != want.EventCount {
		t.Errorf("incident\n got %+v\nwant %+v", inc, want)
	}
	if !inc.OpenedAt.Equal(start) {
		t.Errorf("opened_at %s, want %s", inc.OpenedAt, start)
	}
	if inc.RootCause.CI != "orders-1" || inc.RootCause.Reason == "" {
		t.Errorf("root_cause %+v", inc.RootCause)
	}
	wantFP := []string{"0339c6b2fad40bd1", "dee2a1c3a314faa4"}
	var gotFP []string
	for _, a := range inc.Alerts {
		gotFP = append(gotFP, a.Fingerprint)
		if a.Status != triage.AlertFiring || a.Count != 2 || a.IncidentID != 1 {
			t.Errorf("alert %s: status %s count %d incident %d", a.Fingerprint, a.Status, a.Count, a.IncidentID)
		}
		if !a.FirstSeen.Equal(start) || !a.LastSeen.Equal(start.Add(time.Minute)) {
			t.Errorf("alert %s: first_seen %s last_seen %s", a.Fingerprint, a.FirstSeen, a.LastSeen)
		}
		if a.Labels["alertname"] != "HighErrorRate" || a.Labels["service"] != "orders" {
			t.Errorf("alert %s: labels %v", a.Fingerprint, a.Labels)
		}
		// Alertmanager's fingerprint is kept, and it is Triage's too.
		ls := model.LabelSet{}
		for k, v := range a.Labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		if ls.Fingerprint().String() != a.Fingerprint {
			t.Errorf("alert fingerprint %s, labels hash to %s", a.Fingerprint, ls.Fingerprint())
		}
	}
	slices.Sort(gotFP)
	if !slices.Equal(gotFP, wantFP) {
		t.Errorf("fingerprints %v, want %v", gotFP, wantFP)
	}
	if len(inc.Explanation) != 2 {
		t.Errorf("explanation %+v, want one entry per alert", inc.Explanation)
	}
	for _, x := range inc.Explanation {
		if x.Reason == "" || x.Fingerprint == "" {
			t.Errorf("explanation entry %+v without reason or fingerprint", x)
		}
	}
	if kinds := timelineKinds(inc); !slices.Equal(kinds, []string{triage.KindOpened, triage.KindAlertAdded}) {
		t.Errorf("timeline kinds %v", kinds)
	}

	// The list has the incident without alerts and timeline.
	l := e.list("")
	if len(l.Incidents) != 1 || l.NextBefore != 0 {
		t.Fatalf("list %+v", l)
	}
	if li := l.Incidents[0]; li.ID != 1 || li.Key != "INC-1" || li.AlertCount != 2 || li.EventCount != 4 || len(li.Alerts) != 0 || len(li.Timeline) != 0 {
		t.Errorf("listed incident %+v", li)
	}

	// The events were logged as received, normalised.
	evs, err := e.stored().Events(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 {
		t.Fatalf("%d events logged, want 4", len(evs))
	}
	for _, se := range evs {
		if se.Event.Source != ingest.SourceAlertmanager || se.Event.Fingerprint == "" || se.Event.Severity != triage.SeverityCritical {
			t.Errorf("logged event %+v", se.Event)
		}
	}
}

func timelineKinds(inc triage.Incident) []string {
	var kinds []string
	for _, e := range inc.Timeline {
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

func TestIncidentActions(t *testing.T) {
	e := newEnv(t, options{})
	e.ok("POST", "/api/v1/alerts", fixture(t, "alertmanager-firing.json"), nil)

	last := func(inc triage.Incident) triage.TimelineEntry {
		t.Helper()
		if len(inc.Timeline) == 0 {
			t.Fatal("empty timeline")
		}
		return inc.Timeline[len(inc.Timeline)-1]
	}

	// Acknowledge: the response is the changed incident.
	e.clock.Advance(2 * time.Minute)
	ackAt := e.clock.Now()
	var inc triage.Incident
	e.ok("POST", "/api/v1/incidents/INC-1/acknowledge", `{"actor":"alice"}`, &inc)
	if inc.Status != triage.IncidentAcknowledged || inc.AcknowledgedAt == nil || !inc.AcknowledgedAt.Equal(ackAt) {
		t.Fatalf("after acknowledge: status %s acknowledged_at %v", inc.Status, inc.AcknowledgedAt)
	}
	if te := last(inc); te.Kind != triage.KindAcknowledged || te.Actor != "alice" || !te.Time.Equal(ackAt) {
		t.Errorf("last timeline entry %+v", te)
	}
	n := len(inc.Timeline)

	// Acknowledging again changes nothing.
	e.clock.Advance(time.Minute)
	e.ok("POST", "/api/v1/incidents/1/acknowledge", ``, &inc)
	if inc.Status != triage.IncidentAcknowledged || !inc.AcknowledgedAt.Equal(ackAt) || len(inc.Timeline) != n {
		t.Errorf("second acknowledge changed the incident: %+v", inc)
	}

	// A comment; the actor defaults to "api".
	e.ok("POST", "/api/v1/incidents/1/comments", `{"text":"orders-db failover in progress"}`, &inc)
	if te := last(inc); te.Kind != triage.KindComment || te.Actor != "api" || te.Message != "orders-db failover in progress" {
		t.Errorf("comment entry %+v", te)
	}
	if inc.Status != triage.IncidentAcknowledged {
		t.Errorf("a comment changed the status to %s", inc.Status)
	}

	// Resolve with a note.
	e.clock.Advance(time.Minute)
	resAt := e.clock.Now()
	e.ok("POST", "/api/v1/incidents/1/resolve", `{"actor":"bob","note":"rolled back 1.4.2"}`, &inc)
	if inc.Status != triage.IncidentResolved || inc.ResolvedAt == nil || !inc.ResolvedAt.Equal(resAt) {
		t.Fatalf("after resolve: status %s resolved_at %v", inc.Status, inc.ResolvedAt)
	}
	if te := last(inc); te.Kind != triage.KindResolved || te.Actor != "bob" || !strings.Contains(te.Message, "rolled back 1.4.2") {
		t.Errorf("resolve entry %+v", te)
	}

	// Acknowledging a resolved incident is a conflict, and changes nothing.
	resp, body := e.do("POST", "/api/v1/incidents/1/acknowledge", `{"actor":"carol"}`)
	checkError(t, resp, body, http.StatusConflict, "INC-1")
	if got := e.incident("1"); got.Status != triage.IncidentResolved || len(got.Timeline) != len(inc.Timeline) {
		t.Errorf("conflicting acknowledge changed the incident: %+v", got)
	}

	// Resolving again is idempotent.
	e.ok("POST", "/api/v1/incidents/1/resolve", ``, &inc)
	if !inc.ResolvedAt.Equal(resAt) {
		t.Errorf("second resolve moved resolved_at to %s", inc.ResolvedAt)
	}

	// Comments still work on a resolved incident...
	e.ok("POST", "/api/v1/incidents/1/comments", `{"actor":"bob","text":"postmortem: OPS-77"}`, &inc)
	if te := last(inc); te.Kind != triage.KindComment || te.Message != "postmortem: OPS-77" {
		t.Errorf("comment on resolved: %+v", te)
	}
	// ...and on one past its reopen window, which the engine has let go.
	e.clock.Advance(31 * time.Minute)
	e.ok("POST", "/api/v1/incidents/1/comments", `{"actor":"bob","text":"closing the loop"}`, &inc)
	if te := last(inc); te.Kind != triage.KindComment || te.Message != "closing the loop" {
		t.Errorf("comment on an archived incident: %+v", te)
	}
	if inc.Status != triage.IncidentResolved {
		t.Errorf("status %s after comments", inc.Status)
	}

	// The list shows the final state.
	if l := e.list("?status=resolved"); len(l.Incidents) != 1 || l.Incidents[0].ID != 1 {
		t.Errorf("resolved list %+v", l)
	}
	if l := e.list("?status=open"); len(l.Incidents) != 0 {
		t.Errorf("open list %+v", l)
	}
}

func TestListFilterAndPagination(t *testing.T) {
	e := newEnv(t, options{})
	// Five incidents: one per alertname (the group-by label).
	for _, name := range []string{"A", "B", "C", "D", "E"} {
		e.ok("POST", "/api/v1/events", `{"labels":{"alertname":"`+name+`","service":"orders"}}`, nil)
	}
	e.ok("POST", "/api/v1/incidents/2/acknowledge", ``, nil)
	e.ok("POST", "/api/v1/incidents/4/resolve", ``, nil)

	cases := []struct {
		name  string
		query string
		ids   []uint64
		next  uint64
	}{
		{"default is all, newest first", "", []uint64{5, 4, 3, 2, 1}, 0},
		{"all", "?status=all", []uint64{5, 4, 3, 2, 1}, 0},
		{"open", "?status=open", []uint64{5, 3, 1}, 0},
		{"acknowledged", "?status=acknowledged", []uint64{2}, 0},
		{"resolved", "?status=resolved", []uint64{4}, 0},
		{"first page", "?limit=2", []uint64{5, 4}, 4},
		{"second page", "?limit=2&before=4", []uint64{3, 2}, 2},
		{"last page", "?limit=2&before=2", []uint64{1}, 0},
		{"before by key", "?before=INC-3", []uint64{2, 1}, 0},
		{"before the first", "?before=1", []uint64{}, 0},
		{"before past the newest", "?before=100", []uint64{5, 4, 3, 2, 1}, 0},
		{"open, first page", "?status=open&limit=2", []uint64{5, 3}, 3},
		{"open, second page", "?status=open&limit=2&before=3", []uint64{1}, 0},
		{"limit equal to the count", "?limit=5", []uint64{5, 4, 3, 2, 1}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := e.list(tc.query)
			ids := []uint64{}
			for _, inc := range l.Incidents {
				ids = append(ids, inc.ID)
			}
			if !slices.Equal(ids, tc.ids) || l.NextBefore != tc.next {
				t.Errorf("ids %v next_before %d, want %v %d", ids, l.NextBefore, tc.ids, tc.next)
			}
		})
	}
	// An empty page is an empty array, not null.
	_, body := e.do("GET", "/api/v1/incidents?status=acknowledged&before=2", "")
	if !bytes.Contains(body, []byte(`"incidents":[]`)) {
		t.Errorf("empty page body %s", body)
	}
	resp, body := e.do("GET", "/api/v1/incidents?status=Open", "")
	checkError(t, resp, body, http.StatusBadRequest, "status")
}

func TestAuth(t *testing.T) {
	const token = "tr-9f3c2a7e5b1d4068-secret"
	e := newEnv(t, options{Token: token})
	webhook := fixture(t, "alertmanager-firing.json")

	protected := []struct {
		method, path, body string
	}{
		{"POST", "/api/v1/alerts", webhook},
		{"POST", "/api/v2/alerts", fixture(t, "prometheus-alerts.json")},
		{"POST", "/api/v1/events", `{"labels":{"alertname":"A"}}`},
		{"GET", "/api/v1/incidents", ""},
		{"GET", "/api/v1/incidents/1", ""},
		{"POST", "/api/v1/incidents/1/comments", `{"text":"hi"}`},
		{"POST", "/api/v1/incidents/1/acknowledge", ""},
		{"POST", "/api/v1/incidents/1/resolve", ""},
	}
	badHeaders := []struct {
		name  string
		value string // "" sends no Authorization header
	}{
		{"no header", ""},
		{"wrong token", "Bearer wrong"},
		{"token with a suffix", "Bearer " + token + "x"},
		{"token prefix", "Bearer " + token[:len(token)-1]},
		{"empty bearer", "Bearer "},
		{"token without scheme", token},
		{"basic auth", "Basic " + token},
		{"query-style", "token=" + token},
	}
	for _, p := range protected {
		for _, h := range badHeaders {
			t.Run(p.method+" "+p.path+"/"+h.name, func(t *testing.T) {
				hdr := http.Header{}
				if h.value != "" {
					hdr.Set("Authorization", h.value)
				}
				resp, body := e.doHeader(p.method, p.path, p.body, hdr)
				checkError(t, resp, body, http.StatusUnauthorized, "bearer token")
				if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="triage"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
				if strings.Contains(string(body), token) {
					t.Errorf("the token is in the response: %s", body)
				}
			})
		}
	}
	// Auth comes before routing by method: an unauthenticated client
	// learns nothing about the routes, and every refusal is counted.
	resp, body := e.doHeader("DELETE", "/api/v1/incidents", "", nil)
	checkError(t, resp, body, http.StatusUnauthorized, "bearer token")
	if resp.Header.Get("Allow") != "" {
		t.Errorf("a 401 revealed the allowed methods: %q", resp.Header.Get("Allow"))
	}
	want := float64(len(protected)*len(badHeaders) + 1)
	if got := testutil.ToFloat64(e.srv.AuthFailures()); got != want {
		t.Errorf("triage_http_auth_failures_total = %v, want %v", got, want)
	}

	// Nothing was stored by the rejected requests.
	if evs, err := e.stored().Events(0, 100); err != nil || len(evs) != 0 {
		t.Fatalf("events after unauthorized posts: %v %v", evs, err)
	}

	// The right token works on each, in either case of the scheme.
	for i, p := range protected {
		scheme := "Bearer "
		if i%2 == 1 {
			scheme = "bearer "
		}
		hdr := http.Header{"Authorization": {scheme + token}}
		resp, body := e.doHeader(p.method, p.path, p.body, hdr)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s with the token: %d %s", p.method, p.path, resp.StatusCode, body)
		}
	}

	// Health, metrics and the API document are open.
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi.yaml"} {
		resp, body := e.doHeader("GET", path, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", path, resp.StatusCode, body)
		}
		if strings.Contains(string(body), token) {
			t.Errorf("GET %s shows the token", path)
		}
	}

	// Requests that fail inside the server are logged; with the service
	// stopped, ingest answers 503 and logs why.
	// HEAD works wherever GET does (load balancers check health with it).
	for _, path := range []string{"/healthz", "/readyz", "/api/v1/openapi.yaml"} {
		if resp, _ := e.doHeader("HEAD", path, "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %d", path, resp.StatusCode)
		}
	}

	e.stopService()
	resp, body = e.do("POST", "/api/v1/alerts", webhook)
	checkError(t, resp, body, http.StatusServiceUnavailable, "events not stored, retry")
	resp, body = e.do("POST", "/api/v1/incidents/1/acknowledge", "")
	checkError(t, resp, body, http.StatusServiceUnavailable, "stopped")

	// The token is in nothing the server logged.
	logs := e.logs.String()
	if !strings.Contains(logs, "source=alertmanager") {
		t.Fatalf("expected the failed submission in the logs, got:\n%s", logs)
	}
	if strings.Contains(logs, token) || strings.Contains(logs, token[:12]) {
		t.Errorf("the token is in the logs:\n%s", logs)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, options{MaxBodyBytes: 4096})
	webhook := fixture(t, "alertmanager-firing.json")

	e.ok("POST", "/api/v1/alerts", webhook, nil)
	e.ok("POST", "/api/v1/alerts", webhook, nil) // 2 duplicates
	e.ok("POST", "/api/v2/alerts", fixture(t, "prometheus-alerts.json"), nil)
	e.ok("POST", "/api/v1/events", `[{"labels":{"alertname":"LinkDown","device":"sw-1"}},{"labels":{"alertname":"LinkDown","device":"sw-1"}}]`, nil)
	bad := []struct {
		path, body string
		code       int
	}{
		{"/api/v1/alerts", `{"alerts":[`, 400},                                // syntax
		{"/api/v1/alerts", `{"alerts":[{"labels":[]}]}`, 400},                 // type
		{"/api/v1/alerts", `{"alerts":[{"labels":{"a":"b"}}]}` + "\xff", 400}, // utf8
		{"/api/v1/events", `{"labels":{"a":"b"},"x":1}`, 400},                 // unknown_field
		{"/api/v1/events", `{"labels":{}}`, 400},                              // invalid
		{"/api/v2/alerts", `[{"labels":{"a":"` + strings.Repeat("x", 5000) + `"}}]`, 413},
		{"/api/v2/alerts", ``, 400}, // empty
	}
	for _, b := range bad {
		resp, body := e.do("POST", b.path, b.body)
		if resp.StatusCode != b.code {
			t.Fatalf("POST %s: %d %s, want %d", b.path, resp.StatusCode, body, b.code)
		}
	}
	resp, _ := e.do("BREW", "/api/v1/incidents", "")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("BREW: %d", resp.StatusCode)
	}

	resp, body := e.doHeader("GET", "/metrics", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}

	value := func(name string, labels map[string]string) (float64, bool) {
		mf := mfs[name]
		if mf == nil {
			return 0, false
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
		return 0, false
	}
	cases := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"received from alertmanager", "triage_ingest_events_received_total", map[string]string{"source": "alertmanager"}, 4},
		{"received from prometheus", "triage_ingest_events_received_total", map[string]string{"source": "prometheus"}, 1},
		{"received from api", "triage_ingest_events_received_total", map[string]string{"source": "api"}, 2},
		{"syntax errors", "triage_ingest_decode_errors_total", map[string]string{"source": "alertmanager", "reason": "syntax"}, 1},
		{"type errors", "triage_ingest_decode_errors_total", map[string]string{"source": "alertmanager", "reason": "type"}, 1},
		{"utf8 errors", "triage_ingest_decode_errors_total", map[string]string{"source": "alertmanager", "reason": "utf8"}, 1},
		{"unknown fields", "triage_ingest_decode_errors_total", map[string]string{"source": "api", "reason": "unknown_field"}, 1},
		{"invalid events", "triage_ingest_decode_errors_total", map[string]string{"source": "api", "reason": "invalid"}, 1},
		{"too large", "triage_ingest_decode_errors_total", map[string]string{"source": "prometheus", "reason": "too_large"}, 1},
		{"empty", "triage_ingest_decode_errors_total", map[string]string{"source": "prometheus", "reason": "empty"}, 1},
		{"duplicates", "triage_correlate_duplicates_total", nil, 3},
		{"events applied", "triage_correlate_events_total", nil, 7},
		{"incidents open", "triage_correlate_incidents_open", nil, 3},
		{"webhook 200s", "triage_http_request_duration_seconds", map[string]string{"route": "/api/v1/alerts", "method": "POST", "code": "200"}, 2},
		{"webhook 400s", "triage_http_request_duration_seconds", map[string]string{"route": "/api/v1/alerts", "method": "POST", "code": "400"}, 3},
		{"v2 413s", "triage_http_request_duration_seconds", map[string]string{"route": "/api/v2/alerts", "method": "POST", "code": "413"}, 1},
		{"odd methods are one series", "triage_http_request_duration_seconds", map[string]string{"route": "/api/v1/incidents", "method": "other", "code": "405"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := value(tc.metric, tc.labels)
			if !ok {
				t.Fatalf("no %s%v in /metrics", tc.metric, tc.labels)
			}
			if got != tc.want {
				t.Errorf("%s%v = %v, want %v", tc.metric, tc.labels, got, tc.want)
			}
		})
	}
	if _, ok := value("triage_http_request_duration_seconds", map[string]string{"method": "BREW"}); ok {
		t.Error("a client-chosen method became a label value")
	}
	if mf := mfs["triage_http_request_duration_seconds"]; mf == nil || mf.GetType() != dto.MetricType_HISTOGRAM {
		t.Error("triage_http_request_duration_seconds is not a histogram")
	}
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, lp := range m.GetLabel() {
		got[lp.GetName()] = lp.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// TestOpenAPIMatchesRoutes: the document lists exactly the paths the server
// serves, each with the methods it accepts.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(server.OpenAPI(), &doc); err != nil {
		t.Fatalf("parsing the OpenAPI document: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi: %q, want 3.x", doc.OpenAPI)
	}
	e := newEnv(t, options{})

	// The document is what the server serves at its path.
	resp, body := e.doHeader("GET", "/api/v1/openapi.yaml", "", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, server.OpenAPI()) {
		t.Errorf("GET /api/v1/openapi.yaml: %d, %d bytes, want the embedded document", resp.StatusCode, len(body))
	}

	operations := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	routes := e.srv.Routes()
	if len(routes) == 0 {
		t.Fatal("no routes")
	}
	for _, route := range routes {
		t.Run(route, func(t *testing.T) {
			item, ok := doc.Paths[route]
			if !ok {
				t.Fatalf("the OpenAPI document has no path %s", route)
			}
			var documented []string
			for k := range item {
				if slices.Contains(operations, k) {
					documented = append(documented, strings.ToUpper(k))
				}
			}
			slices.Sort(documented)

			// Ask the server which methods it takes: a 405 lists them.
			path := strings.ReplaceAll(route, "{id}", "1")
			resp, body := e.doHeader("PROPFIND", path, "", nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("PROPFIND %s: %d %s, want 405", path, resp.StatusCode, body)
			}
			allowed := strings.Split(resp.Header.Get("Allow"), ", ")
			slices.Sort(allowed)
			// HEAD comes with every GET and is not documented separately.
			allowed = slices.DeleteFunc(allowed, func(m string) bool { return m == "HEAD" && slices.Contains(allowed, "GET") })
			if !slices.Equal(documented, allowed) {
				t.Errorf("documented methods %v, the server allows %v", documented, allowed)
			}
			// Each allowed method is routed (anything but 404 and 405).
			for _, m := range allowed {
				resp, body := e.doHeader(m, path, "", nil)
				if resp.StatusCode == http.StatusNotFound && strings.Contains(string(body), "no such endpoint") ||
					resp.StatusCode == http.StatusMethodNotAllowed {
					t.Errorf("%s %s: %d %s", m, path, resp.StatusCode, body)
				}
			}
		})
	}
	for _, p := range slices.Sorted(maps.Keys(doc.Paths)) {
		if !slices.Contains(routes, p) {
			t.Errorf("the OpenAPI document has %s, which the server does not serve", p)
		}
	}
}

func TestPprofBehindTheTokenWhenOn(t *testing.T) {
	off := newEnv(t, options{Token: "s3cret"})
	if resp, _ := off.do("GET", "/debug/pprof/", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("pprof off: %d, want 404", resp.StatusCode)
	}
	on := newEnv(t, options{Token: "s3cret", Pprof: true})
	if resp, _ := on.doHeader("GET", "/debug/pprof/heap?debug=1", "", http.Header{}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("pprof without the token: %d, want 401", resp.StatusCode)
	}
	resp, body := on.do("GET", "/debug/pprof/heap?debug=1", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("pprof heap with the token: %d %.80q", resp.StatusCode, body)
	}
	if resp, body := on.do("GET", "/debug/pprof/", ""); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("pprof index: %d %.80q", resp.StatusCode, body)
	}
}
