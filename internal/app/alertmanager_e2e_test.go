package app_test

// End-to-end tests with the real Prometheus Alertmanager: alerts are posted
// to Alertmanager's own API, Alertmanager notifies Triage through its webhook
// receiver (send_resolved, bearer authorization), and the incidents are read
// back from Triage's API. Everything listens on 127.0.0.1 only.
//
//	deploy/dev/alertmanager.sh build
//	ALERTMANAGER_BIN=$(deploy/dev/alertmanager.sh path) go test -race -run Alertmanager -v ./internal/app/

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/internal/app"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/server"
	"github.com/triage-dev/triage/internal/testenv"
)

const (
	// e2eDeadline bounds every wait for something that crosses Alertmanager.
	e2eDeadline = 30 * time.Second
	// Alertmanager's route timers, short so that notifications come quickly.
	amGroupWait     = "250ms"
	amGroupInterval = "500ms"
)

// e2eClient bounds every request, so that a hung server fails the test
// instead of hanging it.
var e2eClient = &http.Client{Timeout: 10 * time.Second}

func TestAlertmanagerE2E(t *testing.T) {
	bin := testenv.RequireFile(t, "ALERTMANAGER_BIN",
		"the real Alertmanager binary: run deploy/dev/alertmanager.sh build, "+
			"then set ALERTMANAGER_BIN=$(deploy/dev/alertmanager.sh path)")

	t.Run("incidents", func(t *testing.T) {
		t.Parallel()
		testAlertmanagerIncidents(t, bin)
	})
	t.Run("bearer auth", func(t *testing.T) {
		t.Parallel()
		testAlertmanagerAuth(t, bin)
	})
	t.Run("wrong bearer token", func(t *testing.T) {
		t.Parallel()
		testAlertmanagerWrongToken(t, bin)
	})
	t.Run("topology and rules", func(t *testing.T) {
		t.Parallel()
		testAlertmanagerTopology(t, bin)
	})
}

// testAlertmanagerTopology: alerts Alertmanager sends in separate
// notifications (different alertnames) become one incident through the
// CMDB, with the database named as root cause; a drop rule drops the
// Watchdog heartbeat.
func testAlertmanagerTopology(t *testing.T, bin string) {
	e := newE2E(t)
	dir := t.TempDir()
	cmdb := filepath.Join(dir, "cmdb.yaml")
	rules := filepath.Join(dir, "rules.yaml")
	for f, body := range map[string]string{
		cmdb: "cis:\n  - {id: host-7, type: host, aliases: [10.0.3.7]}\n  - {id: db-orders, type: database, name: orders-db}\n" +
			"  - {id: svc-orders, type: application, name: orders}\nrelations:\n" +
			"  - {from: db-orders, to: host-7, type: runs_on}\n  - {from: svc-orders, to: db-orders, type: depends_on}\n",
		rules: "rules:\n  - {name: drop-watchdog, kind: drop, if: 'alert.labels.alertname == \"Watchdog\"'}\n" +
			"  - name: dba\n    kind: enrich\n    if: ci.type == \"database\"\n    set: {assignment_group: dba, jira_project: DBA}\n",
	} {
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tr := e.startTriageWith("", func(c *config.Config) {
		c.CMDB.File = cmdb
		c.Rules.Files = []string{rules}
	})
	am := e.startAlertmanager(bin, tr.url+"/api/v1/alerts", "", "")
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	am.post([]amAlert{
		{Labels: map[string]string{"alertname": "PostgresDown", "instance": "orders-db", "severity": "critical"}, StartsAt: start},
		{Labels: map[string]string{"alertname": "HighErrorRate", "service": "orders", "severity": "warning"}, StartsAt: start.Add(time.Second)},
		{Labels: map[string]string{"alertname": "NodeDown", "instance": "10.0.3.7:9100", "severity": "critical"}, StartsAt: start.Add(2 * time.Second)},
		{Labels: map[string]string{"alertname": "Watchdog"}, StartsAt: start},
	})
	incs := e.waitIncidents(tr, "open", 1, 3)
	inc := tr.incident(incs[0].ID)
	if inc.RootCause.CI != "host-7" || inc.AssignmentGroup != "dba" || inc.Project != "DBA" {
		t.Errorf("incident %s: root cause %+v, assignment group %q, project %q; want host-7 (both others depend on it), dba, DBA",
			inc.Key, inc.RootCause, inc.AssignmentGroup, inc.Project)
	}
	for _, a := range inc.Alerts {
		if a.Binding == nil {
			t.Errorf("alert %v is not bound to a CI", a.Labels)
		}
		if a.Labels["alertname"] == "Watchdog" {
			t.Errorf("the Watchdog alert was not dropped")
		}
	}
	e.waitFor("the drop to be counted", func() (bool, string) {
		m := tr.metric(`triage_rules_dropped_events_total{rule="drop-watchdog"}`)
		return m != "" && m != "0", "dropped: " + m
	})
}

// testAlertmanagerIncidents: alerts posted to Alertmanager become Triage
// incidents grouped by alertname+service, with Alertmanager's fingerprints,
// and resolve when Alertmanager sends them resolved.
func testAlertmanagerIncidents(t *testing.T, bin string) {
	e := newE2E(t)
	tr := e.startTriage("")
	// Alertmanager groups by alertname only, so the orders and billing alerts
	// reach Triage in the same notification and Triage must split them.
	am := e.startAlertmanager(bin, tr.url+"/api/v1/alerts", "", "")

	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	alerts := []amAlert{
		{Labels: map[string]string{"alertname": "HighErrorRate", "service": "orders", "instance": "orders-1:9100", "severity": "warning"}},
		{Labels: map[string]string{"alertname": "HighErrorRate", "service": "orders", "instance": "orders-2:9100", "severity": "critical"},
			Annotations: map[string]string{"summary": "orders-2 returns 5xx"}},
		{Labels: map[string]string{"alertname": "HighErrorRate", "service": "orders", "instance": "orders-3:9100", "severity": "warning"}},
		{Labels: map[string]string{"alertname": "HighErrorRate", "service": "billing", "instance": "billing-1:9100", "severity": "warning"}},
	}
	for i := range alerts {
		alerts[i].StartsAt = start
	}
	am.post(alerts)

	// The fingerprints Alertmanager computed, by instance.
	amFP := map[string]string{}
	e.waitFor("Alertmanager to list the 4 posted alerts", func() (bool, string) {
		got := am.alerts()
		amFP = map[string]string{}
		for _, a := range got {
			amFP[a.Labels["instance"]] = a.Fingerprint
		}
		return len(amFP) == 4, fmt.Sprintf("Alertmanager lists %d alerts: %v", len(got), amFP)
	})
	for _, a := range alerts {
		if fp, want := amFP[a.Labels["instance"]], triage.Fingerprint(a.Labels); fp != want {
			t.Errorf("Alertmanager fingerprint of %v is %s, triage.Fingerprint computes %s", a.Labels, fp, want)
		}
	}

	want := map[string]wantIncident{
		`alertname="HighErrorRate",service="orders"`: {service: "orders", severity: "critical", priority: "P1",
			instances: []string{"orders-1:9100", "orders-2:9100", "orders-3:9100"}},
		`alertname="HighErrorRate",service="billing"`: {service: "billing", severity: "warning", priority: "P3",
			instances: []string{"billing-1:9100"}},
	}
	incs := e.waitIncidents(tr, "open", 2, 4)
	byKey := map[string]triage.Incident{}
	for _, inc := range incs {
		byKey[inc.GroupKey] = inc
	}
	if got := slices.Sorted(maps.Keys(byKey)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
		e.fatalf("incident group keys = %q, want %q", got, slices.Sorted(maps.Keys(want)))
	}
	for key, w := range want {
		inc := tr.incident(byKey[key].ID)
		if inc.Status != triage.IncidentOpen || inc.Service != w.service || inc.Severity != w.severity ||
			inc.Priority != w.priority || inc.AlertCount != len(w.instances) || inc.FiringCount != len(w.instances) {
			t.Errorf("incident %s {%s}: status %s, service %q, severity %q, priority %s, alerts %d (firing %d); "+
				"want open, %q, %q, %s, %d (firing %d)", inc.Key, key, inc.Status, inc.Service, inc.Severity, inc.Priority,
				inc.AlertCount, inc.FiringCount, w.service, w.severity, w.priority, len(w.instances), len(w.instances))
		}
		var gotFP, wantFP []string
		for _, in := range w.instances {
			wantFP = append(wantFP, amFP[in])
		}
		for _, a := range inc.Alerts {
			gotFP = append(gotFP, a.Fingerprint)
			if a.Source != "alertmanager" {
				t.Errorf("incident %s alert %s: source %q, want alertmanager", inc.Key, a.Fingerprint, a.Source)
			}
			if a.Status != triage.AlertFiring {
				t.Errorf("incident %s alert %s: status %q, want firing", inc.Key, a.Fingerprint, a.Status)
			}
			if !a.StartsAt.Equal(start) {
				t.Errorf("incident %s alert %s: starts_at %s, want Alertmanager's %s", inc.Key, a.Fingerprint, a.StartsAt, start)
			}
		}
		slices.Sort(gotFP)
		slices.Sort(wantFP)
		if !slices.Equal(gotFP, wantFP) {
			t.Errorf("incident %s {%s}: alert fingerprints %v, want Alertmanager's %v", inc.Key, key, gotFP, wantFP)
		}
	}
	if t.Failed() {
		e.fatalf("incidents do not match (see above)")
	}

	// Resolve every alert in Alertmanager: it sends them resolved (send_resolved),
	// and with resolve_after 0 both incidents resolve at once.
	end := time.Now().Add(-time.Second).UTC()
	for i := range alerts {
		alerts[i].EndsAt = end
	}
	am.post(alerts)
	resolved := e.waitIncidents(tr, "resolved", 2, 4)
	for _, inc := range resolved {
		full := tr.incident(inc.ID)
		if full.ResolvedAt == nil || full.FiringCount != 0 {
			t.Errorf("incident %s: resolved_at %v, firing %d; want a time and 0", full.Key, full.ResolvedAt, full.FiringCount)
		}
		for _, a := range full.Alerts {
			if a.Status != triage.AlertResolved || a.EndsAt.IsZero() {
				t.Errorf("incident %s alert %s: status %q, ends_at %s; want resolved with an end", full.Key, a.Fingerprint, a.Status, a.EndsAt)
			}
		}
	}
	if open := tr.incidents("open"); len(open) != 0 {
		t.Errorf("%d incidents still open after Alertmanager resolved every alert", len(open))
	}
	if t.Failed() {
		e.fatalf("resolution does not match (see above)")
	}

	// A new occurrence of one orders alert, within reopen_window, reopens
	// the orders incident rather than opening a new one.
	ordersID := byKey[`alertname="HighErrorRate",service="orders"`].ID
	refire := alerts[1]
	refire.StartsAt, refire.EndsAt = time.Now().UTC(), time.Time{}
	am.post([]amAlert{refire})
	reopened := e.waitIncidents(tr, "open", 1, 3)
	inc := tr.incident(reopened[0].ID)
	if inc.ID != ordersID || inc.ReopenCount != 1 || inc.FiringCount != 1 || inc.ResolvedAt != nil {
		t.Errorf("after a re-fire: incident %s reopen_count %d, firing %d, resolved_at %v; want INC-%d reopened once, 1 firing, not resolved",
			inc.Key, inc.ReopenCount, inc.FiringCount, inc.ResolvedAt, ordersID)
	}
	if n := len(tr.incidents("all")); n != 2 {
		t.Errorf("after a re-fire Triage lists %d incidents, want still 2", n)
	}
}

// testAlertmanagerAuth: with a Triage token, Alertmanager's webhook
// authorization (credentials_file) gets the notification accepted.
func testAlertmanagerAuth(t *testing.T, bin string) {
	e := newE2E(t)
	const token = "e2e-right-token-7Qx"
	tr := e.startTriage(token)
	credFile := filepath.Join(t.TempDir(), "triage-token")
	if err := os.WriteFile(credFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	am := e.startAlertmanager(bin, tr.url+"/api/v1/alerts", "", credFile)
	labels := map[string]string{"alertname": "TokenWorks", "service": "auth", "severity": "critical"}
	am.post([]amAlert{{Labels: labels, StartsAt: time.Now().Add(-time.Minute).UTC()}})

	incs := e.waitIncidents(tr, "open", 1, 1)
	inc := tr.incident(incs[0].ID)
	if len(inc.Alerts) != 1 || inc.Alerts[0].Fingerprint != triage.Fingerprint(labels) || inc.Alerts[0].Source != "alertmanager" {
		t.Errorf("incident %s alerts = %+v, want one from alertmanager with fingerprint %s", inc.Key, inc.Alerts, triage.Fingerprint(labels))
	}
	if code := tr.status("/api/v1/incidents", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/incidents without a token: status %d, want 401", code)
	}
	e.checkNoSecret(token)
}

// testAlertmanagerWrongToken: Alertmanager configured with the wrong token is
// refused (401, which Alertmanager logs and does not retry) and opens nothing.
func testAlertmanagerWrongToken(t *testing.T, bin string) {
	e := newE2E(t)
	const token, wrong = "e2e-right-token-9Kd", "e2e-wrong-token-3Zp"
	tr := e.startTriage(token)
	am := e.startAlertmanager(bin, tr.url+"/api/v1/alerts", wrong, "")
	am.post([]amAlert{{Labels: map[string]string{"alertname": "TokenWrong", "service": "auth"},
		StartsAt: time.Now().Add(-time.Minute).UTC()}})

	e.waitFor("Alertmanager to log the webhook's 401", func() (bool, string) {
		log := e.amLog.String()
		return strings.Contains(log, "Notify for alerts failed") && strings.Contains(log, "unexpected status code 401"),
			"no \"unexpected status code 401\" in Alertmanager's log yet"
	})
	if n := tr.metric(`triage_http_request_duration_seconds_count{code="401",method="POST",route="/api/v1/alerts"}`); n == "" || n == "0" {
		t.Errorf("Triage counted no 401 on POST /api/v1/alerts (metric %q)", n)
	}
	if incs := tr.incidents("all"); len(incs) != 0 {
		t.Errorf("a webhook with the wrong token made %d incidents: %+v", len(incs), incs)
	}
	e.checkNoSecret(token)
	e.checkNoSecret(wrong)
}

type wantIncident struct {
	service, severity, priority string
	instances                   []string
}

// e2e is one test's Triage and Alertmanager, with their logs for failure messages.
type e2e struct {
	t        *testing.T
	triLog   testenv.SyncBuffer
	amLog    testenv.SyncBuffer
	amConfig string
}

func newE2E(t *testing.T) *e2e {
	e := &e2e{t: t}
	t.Cleanup(func() {
		if t.Failed() {
			e.dumpLogs()
		}
	})
	return e
}

func (e *e2e) dumpLogs() {
	e.t.Helper()
	if e.amConfig != "" {
		e.t.Logf("alertmanager.yml:\n%s", e.amConfig)
	}
	e.t.Logf("Alertmanager log:\n%s", tail(e.amLog.String(), 60))
	e.t.Logf("Triage log:\n%s", tail(e.triLog.String(), 40))
}

// fatalf fails the test now; the cleanup prints both logs.
func (e *e2e) fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf(format, args...)
}

// waitFor polls cond until it holds or e2eDeadline passes; state describes
// what was last seen, for the failure message.
func (e *e2e) waitFor(what string, cond func() (ok bool, state string)) {
	e.t.Helper()
	deadline := time.Now().Add(e2eDeadline)
	for delay := 10 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.fatalf("timed out after %s waiting for %s: %s", e2eDeadline, what, state)
		}
		time.Sleep(delay)
	}
}

// waitIncidents waits until Triage lists exactly n incidents of status
// holding alerts alerts in all, and returns them.
func (e *e2e) waitIncidents(tr *triageProc, status string, n, alerts int) []triage.Incident {
	e.t.Helper()
	var incs []triage.Incident
	e.waitFor(fmt.Sprintf("%d %s incidents with %d alerts in Triage", n, status, alerts), func() (bool, string) {
		incs = tr.incidents(status)
		total := 0
		var desc []string
		for _, inc := range incs {
			total += inc.AlertCount
			desc = append(desc, fmt.Sprintf("%s {%s} %s alerts=%d", inc.Key, inc.GroupKey, inc.Status, inc.AlertCount))
		}
		return len(incs) == n && total == alerts, fmt.Sprintf("Triage lists %d %s incidents: %v", len(incs), status, desc)
	})
	return incs
}

// checkNoSecret fails if a token shows up in either log.
func (e *e2e) checkNoSecret(secret string) {
	e.t.Helper()
	if strings.Contains(e.triLog.String(), secret) {
		e.t.Errorf("Triage's log contains a bearer token")
	}
	if strings.Contains(e.amLog.String(), secret) {
		e.t.Errorf("Alertmanager's log contains a bearer token")
	}
}

// triageProc is Triage running in-process.
type triageProc struct {
	e     *e2e
	url   string
	token string
}

// startTriage runs app.Run on 127.0.0.1:0 with the default config, a
// temporary data dir, resolve_after 0 and, when token is set, bearer auth.
func (e *e2e) startTriage(token string) *triageProc {
	e.t.Helper()
	return e.startTriageWith(token, nil)
}

// startTriageWith starts Triage with a config changed by tweak.
func (e *e2e) startTriageWith(token string, tweak func(*config.Config)) *triageProc {
	t := e.t
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Correlation.ResolveAfter = 0
	cfg.Auth.Token = config.Secret(token)
	if tweak != nil {
		tweak(cfg)
	}

	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Config:    cfg,
			Logger:    slog.New(slog.NewTextHandler(&e.triLog, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Listening: func(a net.Addr) { addr <- a },
			Getenv:    func(string) string { return "" }, // no TRIAGE_AUTH_TOKEN from the environment
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("app.Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("app.Run did not return within 20s of cancellation")
		}
	})
	select {
	case a := <-addr:
		return &triageProc{e: e, url: "http://" + a.String(), token: token}
	case err := <-done:
		e.fatalf("app.Run returned before listening: %v", err)
	case <-time.After(e2eDeadline):
		e.fatalf("Triage did not start listening within %s", e2eDeadline)
	}
	return nil
}

// status is the status code of a GET with the given bearer token.
func (tr *triageProc) status(path, token string) int {
	tr.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, tr.url+path, nil)
	if err != nil {
		tr.e.fatalf("%v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e2eClient.Do(req)
	if err != nil {
		tr.e.fatalf("GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (tr *triageProc) get(path string, v any) {
	tr.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, tr.url+path, nil)
	if err != nil {
		tr.e.fatalf("%v", err)
	}
	if tr.token != "" {
		req.Header.Set("Authorization", "Bearer "+tr.token)
	}
	getJSON(tr.e, req, v)
}

func (tr *triageProc) incidents(status string) []triage.Incident {
	tr.e.t.Helper()
	var l server.IncidentList
	tr.get("/api/v1/incidents?status="+status, &l)
	return l.Incidents
}

func (tr *triageProc) incident(id uint64) triage.Incident {
	tr.e.t.Helper()
	var inc triage.Incident
	tr.get(fmt.Sprintf("/api/v1/incidents/%d", id), &inc)
	return inc
}

// metric returns the value of one sample of Triage's /metrics, or "".
func (tr *triageProc) metric(series string) string {
	tr.e.t.Helper()
	resp, err := e2eClient.Get(tr.url + "/metrics")
	if err != nil {
		tr.e.fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tr.e.fatalf("GET /metrics: %v", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// amProc is a running Alertmanager subprocess.
type amProc struct {
	e   *e2e
	url string
}

// amAlert is one alert of Alertmanager's POST /api/v2/alerts.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"startsAt,omitzero"`
	EndsAt      time.Time         `json:"endsAt,omitzero"`
}

// amGettableAlert is the part of GET /api/v2/alerts the tests read.
type amGettableAlert struct {
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
}

// startAlertmanager starts Alertmanager with one webhook receiver at
// webhookURL (send_resolved), grouping by alertname, and with bearer
// authorization from credentials or credentialsFile when set. It returns
// once Alertmanager's /-/ready answers 200.
func (e *e2e) startAlertmanager(bin, webhookURL, credentials, credentialsFile string) *amProc {
	t := e.t
	t.Helper()
	dir := t.TempDir()
	auth := ""
	switch {
	case credentials != "":
		auth = fmt.Sprintf("\n        http_config:\n          authorization:\n            credentials: %q", credentials)
	case credentialsFile != "":
		auth = fmt.Sprintf("\n        http_config:\n          authorization:\n            credentials_file: %q", credentialsFile)
	}
	e.amConfig = fmt.Sprintf(`route:
  receiver: triage
  group_by: [alertname]
  group_wait: %s
  group_interval: %s
  repeat_interval: 1h
receivers:
  - name: triage
    webhook_configs:
      - url: %q
        send_resolved: true%s
`, amGroupWait, amGroupInterval, webhookURL, auth)
	cfgFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgFile, []byte(e.amConfig), 0o600); err != nil {
		t.Fatal(err)
	}

	// The port is free when picked but may be taken before Alertmanager binds
	// it: retry with another port when that happens.
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		listen := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(bin,
			"--config.file="+cfgFile,
			"--storage.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--web.listen-address="+listen,
			"--web.external-url=http://"+listen+"/",
			"--cluster.listen-address=", // no clustering: no gossip port, no settle wait
			"--log.level=debug",
		)
		cmd.Stdout, cmd.Stderr = &e.amLog, &e.amLog
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			select {
			case <-exited:
				return
			default:
			}
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}

		am := &amProc{e: e, url: "http://" + listen}
		err := am.waitReady(exited)
		if err == nil {
			t.Cleanup(stop)
			return am
		}
		stop()
		if attempt < 3 && strings.Contains(e.amLog.String(), "address already in use") {
			t.Logf("Alertmanager could not bind %s, retrying on another port", listen)
			continue
		}
		e.fatalf("Alertmanager did not become ready: %v", err)
	}
}

// waitReady polls /-/ready until it answers 200, the process exits, or the deadline passes.
func (am *amProc) waitReady(exited <-chan error) error {
	deadline := time.Now().Add(e2eDeadline)
	last := "no answer"
	for delay := 10 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		select {
		case err := <-exited:
			return fmt.Errorf("it exited: %v", err)
		default:
		}
		resp, err := e2eClient.Get(am.url + "/-/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s/-/ready: %s after %s", am.url, last, e2eDeadline)
		}
		time.Sleep(delay)
	}
}

// post sends alerts to Alertmanager's POST /api/v2/alerts.
func (am *amProc) post(alerts []amAlert) {
	am.e.t.Helper()
	body, err := json.Marshal(alerts)
	if err != nil {
		am.e.fatalf("%v", err)
	}
	resp, err := e2eClient.Post(am.url+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		am.e.fatalf("POST %s/api/v2/alerts: %v", am.url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		am.e.fatalf("POST %s/api/v2/alerts: %s: %s\nbody: %s", am.url, resp.Status, msg, body)
	}
}

// alerts lists Alertmanager's active alerts (GET /api/v2/alerts).
func (am *amProc) alerts() []amGettableAlert {
	am.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, am.url+"/api/v2/alerts", nil)
	if err != nil {
		am.e.fatalf("%v", err)
	}
	var out []amGettableAlert
	getJSON(am.e, req, &out)
	return out
}

func getJSON(e *e2e, req *http.Request, v any) {
	e.t.Helper()
	resp, err := e2eClient.Do(req)
	if err != nil {
		e.fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		e.fatalf("%s %s: %s: %s", req.Method, req.URL, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		e.fatalf("%s %s: decoding %T: %v\nbody: %s", req.Method, req.URL, v, err, body)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
