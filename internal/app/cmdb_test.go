package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/internal/app"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/server"
)

// inproc is an in-process `triage serve`.
type inproc struct {
	t      *testing.T
	base   string
	reload chan struct{}
	stop   func()
}

func startInproc(t *testing.T, cfg *config.Config) *inproc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	reload := make(chan struct{})
	go func() {
		done <- app.Run(ctx, app.Options{Config: cfg, Reload: reload, Listening: func(a net.Addr) { listening <- a }})
	}()
	d := &inproc{t: t, reload: reload}
	select {
	case a := <-listening:
		d.base = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon did not start in 30s")
	}
	stopped := false
	d.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon stopped with %v", err)
		}
	}
	t.Cleanup(d.stop)
	return d
}

func (d *inproc) do(method, path, body string, v any) int {
	d.t.Helper()
	req, err := http.NewRequest(method, d.base+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			d.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

func (d *inproc) metric(name string) string {
	d.t.Helper()
	resp, err := http.Get(d.base + "/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return strings.TrimPrefix(l, name+" ")
		}
	}
	return ""
}

func (d *inproc) reloadNow(want func() bool) {
	d.t.Helper()
	d.reload <- struct{}{}
	deadline := time.Now().Add(10 * time.Second)
	for !want() {
		if time.Now().After(deadline) {
			d.t.Fatal("reload did not take effect in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *inproc) post(events ...triage.Event) {
	d.t.Helper()
	body, _ := json.Marshal(events)
	if code := d.do("POST", "/api/v1/events", string(body), nil); code != http.StatusOK && code != http.StatusAccepted {
		d.t.Fatalf("POST events: %d", code)
	}
}

func ev(labels ...string) triage.Event {
	e := triage.Event{Labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		e.Labels[labels[i]] = labels[i+1]
	}
	return e
}

const smallCMDB = `cis:
  - {id: host-1, type: host, aliases: [10.0.0.1]}
  - {id: db-1, type: database, name: orders-db}
  - {id: svc-1, type: application, name: orders}
relations:
  - {from: db-1, to: host-1, type: runs_on}
  - {from: svc-1, to: db-1, type: depends_on}
`

func TestCMDBFileReloadKeepsOldOnError(t *testing.T) {
	dir := t.TempDir()
	cmdb := filepath.Join(dir, "cmdb.yaml")
	if err := os.WriteFile(cmdb, []byte(smallCMDB), 0o644); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - {name: drop-watchdog, kind: drop, if: 'alert.labels.alertname == \"Watchdog\"'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", filepath.Join(dir, "data")
	cfg.CMDB.File, cfg.CMDB.ReloadInterval = cmdb, 0 // reload on signal only
	cfg.Rules.Files, cfg.Rules.ReloadInterval = []string{filepath.Join(dir, "*.yaml.rules"), rules}, 0
	d := startInproc(t, cfg)

	var cis server.CIList
	if d.do("GET", "/api/v1/cmdb/cis", "", &cis); cis.Total != 3 {
		t.Fatalf("%d CIs, want 3", cis.Total)
	}
	d.post(ev("alertname", "HostDown", "instance", "10.0.0.1:9100"), ev("alertname", "HighErrorRate", "service", "orders"), ev("alertname", "Watchdog"))
	var list server.IncidentList
	d.do("GET", "/api/v1/incidents", "", &list)
	if len(list.Incidents) != 1 || list.Incidents[0].RootCause.CI != "host-1" || list.Incidents[0].AlertCount != 2 {
		t.Fatalf("incidents: %+v; want one with 2 alerts and root cause host-1 (Watchdog dropped)", list.Incidents)
	}

	// A broken file: the old topology stays, the metric says the reload failed.
	if err := os.WriteFile(cmdb, []byte(smallCMDB+"  - {from: svc-1, to: nowhere, type: depends_on}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.reloadNow(func() bool { return d.metric(`triage_reload_success{trigger="signal"}`) == "0" })
	if d.do("GET", "/api/v1/cmdb/cis", "", &cis); cis.Total != 3 {
		t.Fatalf("after a bad reload: %d CIs, want the old 3", cis.Total)
	}
	// PUT is refused while a file manages the CMDB.
	var e struct{ Error string }
	if code := d.do("PUT", "/api/v1/cmdb", smallCMDB, &e); code != http.StatusConflict || !strings.Contains(e.Error, "cmdb.file") {
		t.Fatalf("PUT with cmdb.file: %d %q, want 409", code, e.Error)
	}

	// A good file: swapped in; open incidents keep their alerts.
	fixed := strings.Replace(smallCMDB, "relations:", "  - {id: svc-2, type: application, name: payments}\nrelations:", 1) +
		"  - {from: svc-2, to: svc-1, type: depends_on}\n"
	if err := os.WriteFile(cmdb, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	d.reloadNow(func() bool { return d.metric(`triage_reload_success{trigger="signal"}`) == "1" })
	if d.do("GET", "/api/v1/cmdb/cis", "", &cis); cis.Total != 4 {
		t.Fatalf("after a good reload: %d CIs, want 4", cis.Total)
	}
	d.post(ev("alertname", "HighLatency", "service", "payments")) // svc-2 → svc-1: joins the open incident
	d.do("GET", "/api/v1/incidents", "", &list)
	if len(list.Incidents) != 1 || list.Incidents[0].AlertCount != 3 {
		t.Fatalf("after reload: %d incidents, first with %d alerts; want the new CI's alert in the open incident",
			len(list.Incidents), list.Incidents[0].AlertCount)
	}
}

func TestCMDBImportOverAPIPersists(t *testing.T) {
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	d := startInproc(t, cfg)

	var e struct{ Error string }
	bad := "cis:\n  - {id: a}\n  - {id: a}\n"
	if code := d.do("PUT", "/api/v1/cmdb", bad, &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "body:3: cis.1.id: duplicate id") {
		t.Fatalf("bad PUT: %d %q; want 400 with body:line", code, e.Error)
	}
	if code := d.do("PUT", "/api/v1/cmdb", "", &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "body:1: cis: required") {
		t.Fatalf("empty PUT: %d %q; want 400: an empty body must not wipe the CMDB", code, e.Error)
	}
	var res server.ImportResult
	if code := d.do("PUT", "/api/v1/cmdb", smallCMDB, &res); code != http.StatusOK || res.CIs != 3 || res.Relations != 2 {
		t.Fatalf("PUT: %d %+v", code, res)
	}
	var ci server.CIDetail
	if code := d.do("GET", "/api/v1/cmdb/cis/db-1", "", &ci); code != http.StatusOK || ci.Name != "orders-db" || len(ci.Relations) != 2 {
		t.Fatalf("GET db-1: %d %+v", code, ci)
	}
	if code := d.do("GET", "/api/v1/cmdb/cis/nope", "", &e); code != http.StatusNotFound {
		t.Fatalf("GET unknown CI: %d", code)
	}
	d.stop()

	// A restart keeps the imported CMDB.
	d2 := startInproc(t, cfg)
	var cis server.CIList
	if d2.do("GET", "/api/v1/cmdb/cis?type=database", "", &cis); cis.Total != 1 || cis.CIs[0].ID != "db-1" {
		t.Fatalf("after restart, databases: %+v", cis)
	}
	d2.post(ev("alertname", "PostgresDown", "ci", "db-1"), ev("alertname", "HighErrorRate", "service", "orders"))
	var list server.IncidentList
	d2.do("GET", "/api/v1/incidents", "", &list)
	if len(list.Incidents) != 1 || list.Incidents[0].RootCause.CI != "db-1" {
		t.Fatalf("incidents after restart: %+v", list.Incidents)
	}
	var page server.CIList
	if d2.do("GET", "/api/v1/cmdb/cis?limit=2", "", &page); len(page.CIs) != 2 || page.NextOffset != 2 || page.Total != 3 {
		t.Fatalf("paging: %+v", page)
	}
}
