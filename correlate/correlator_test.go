package correlate

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage"
)

// testCMDB: two access switches under a core switch, three hosts, two
// databases, a cache and three services.
//
//	sw-core ← sw-a ← host-1 ← db-orders ← svc-orders → cache-orders → host-2 → sw-a
//	          sw-a ← host-2 ← svc-web
//	sw-core ← sw-b ← host-3 ← db-users ← svc-users
const testCMDB = `
cis:
  - {id: sw-core, type: network_switch, name: core1}
  - {id: sw-a, type: network_switch, name: access-a}
  - {id: sw-b, type: network_switch, name: access-b}
  - {id: host-1, type: host, name: host-1.prod, aliases: [10.0.0.1]}
  - {id: host-2, type: host, name: host-2.prod, aliases: [10.0.0.2]}
  - {id: host-3, type: host, name: host-3.prod, aliases: [10.0.0.3]}
  - {id: db-orders, type: database, name: orders-db}
  - {id: db-users, type: database, name: users-db}
  - {id: cache-orders, type: cache, name: orders-redis}
  - {id: svc-orders, type: application, name: orders, service: orders}
  - {id: svc-users, type: application, name: users, service: users}
  - {id: svc-web, type: application, name: web, service: web}
relations:
  - {from: sw-a, to: sw-core, type: connected_to}
  - {from: sw-b, to: sw-core, type: connected_to}
  - {from: host-1, to: sw-a, type: connected_to}
  - {from: host-2, to: sw-a, type: connected_to}
  - {from: host-3, to: sw-b, type: connected_to}
  - {from: db-orders, to: host-1, type: runs_on}
  - {from: cache-orders, to: host-2, type: runs_on}
  - {from: db-users, to: host-3, type: runs_on}
  - {from: svc-orders, to: db-orders, type: depends_on}
  - {from: svc-orders, to: cache-orders, type: depends_on}
  - {from: svc-users, to: db-users, type: depends_on}
  - {from: svc-users, to: host-3, type: runs_on}
  - {from: svc-web, to: host-2, type: runs_on}
`

func testTopology(t *testing.T) *Topology {
	t.Helper()
	topo, err := ParseTopology("cmdb.yaml", []byte(testCMDB))
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func newTopoHarness(t *testing.T, co CorrelatorOptions, opts Options) *harness {
	t.Helper()
	topo := testTopology(t)
	if co.Window == 0 {
		co.Window = 10 * time.Minute
	}
	if co.GroupBy == nil {
		co.GroupBy = []string{"alertname", "service"}
	}
	opts.Topology = topo
	if opts.ReopenWindow == 0 {
		opts.ReopenWindow = 30 * time.Minute
	}
	opts.ResolveAfter = 5 * time.Minute
	return &harness{t: t, e: NewEngine(opts, NewCorrelator(topo, co)), m: NewMemory(), now: t0}
}

func TestBindingByLabelOrder(t *testing.T) {
	topo := testTopology(t)
	tests := []struct {
		name   string
		labels map[string]string
		want   *triage.Binding
	}{
		{"ci label by id", map[string]string{"ci": "db-orders"}, &triage.Binding{CI: "db-orders", Label: "ci", Value: "db-orders", Via: "id"}},
		{"instance alias with port", map[string]string{"instance": "10.0.0.1:9100"}, &triage.Binding{CI: "host-1", Label: "instance", Value: "10.0.0.1:9100", Via: "alias"}},
		{"hostname by name", map[string]string{"hostname": "host-2.prod"}, &triage.Binding{CI: "host-2", Label: "hostname", Value: "host-2.prod", Via: "name"}},
		{"device by name", map[string]string{"device": "access-b"}, &triage.Binding{CI: "sw-b", Label: "device", Value: "access-b", Via: "name"}},
		{"service by name", map[string]string{"service": "orders"}, &triage.Binding{CI: "svc-orders", Label: "service", Value: "orders", Via: "name"}},
		{"first label in order wins", map[string]string{"service": "orders", "instance": "10.0.0.3:9100"}, &triage.Binding{CI: "host-3", Label: "instance", Value: "10.0.0.3:9100", Via: "alias"}},
		{"unknown value falls through to the next label", map[string]string{"instance": "10.9.9.9:80", "service": "users"}, &triage.Binding{CI: "svc-users", Label: "service", Value: "users", Via: "name"}},
		{"nothing matches", map[string]string{"alertname": "Watchdog", "instance": "x:1"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := topo.Bind(tc.labels, DefaultCILabels)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Bind = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseTopologyErrorsHaveLines(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"duplicate id", "cis:\n  - {id: a}\n  - {id: a}\n", []string{"c.yaml:3: cis.1.id: duplicate id \"a\" (first at cis.0)"}},
		{"alias names another CI", "cis:\n  - {id: a, aliases: [x]}\n  - id: b\n    aliases: [y, x]\n", []string{"c.yaml:4: cis.1.aliases.1: \"x\" already names CI \"a\" (cis.0)"}},
		{"missing id", "cis:\n  - {name: a}\n", []string{"c.yaml:2: cis.0.id: required"}},
		{"relation to unknown CI", "cis:\n  - {id: a}\nrelations:\n  - {from: a, to: b, type: depends_on}\n", []string{"c.yaml:4: relations.0.to: \"b\" is not the id of a CI"}},
		{"unknown relation type", "cis:\n  - {id: a}\n  - {id: b}\nrelations:\n  - from: a\n    to: b\n    type: owns\n", []string{"c.yaml:7: relations.0.type: \"owns\" is not one of"}},
		{"self relation", "cis:\n  - {id: a}\nrelations:\n  - {from: a, to: a, type: depends_on}\n", []string{"c.yaml:4: relations.0: a CI cannot relate to itself"}},
		{"unknown key", "cis:\n  - {id: a, colour: red}\n", []string{"c.yaml:2: unknown key colour"}},
		{"wrong type", "cis: {id: a}\n", []string{"c.yaml:1:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTopology("c.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseTopologyJSON(t *testing.T) {
	topo, err := ParseTopology("c.json", []byte(`{"cis": [{"id": "a", "aliases": ["10.1.1.1"]}, {"id": "b"}],
		"relations": [{"from": "b", "to": "a", "type": "runs_on"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if topo.Len() != 2 || topo.Relations() != 1 {
		t.Fatalf("%d CIs, %d relations; want 2, 1", topo.Len(), topo.Relations())
	}
	if got := topo.RelationsOf("a"); len(got) != 1 || got[0] != (triage.Relation{From: "b", To: "a", Type: "runs_on"}) {
		t.Fatalf("RelationsOf(a) = %v", got)
	}
}

func TestTopologyCascadeIsOneIncident(t *testing.T) {
	h := newTopoHarness(t, CorrelatorOptions{MaxHops: 3}, Options{})
	db := h.fire("alertname", "PostgresDown", "ci", "db-orders", "severity", "critical")
	h.at(40 * time.Second)
	svc := h.fire("alertname", "HighErrorRate", "service", "orders", "severity", "warning")
	h.at(50 * time.Second)
	users := h.fire("alertname", "PostgresDown", "instance", "users-db", "severity", "critical") // binds by name via instance
	h.at(60 * time.Second)
	usvc := h.fire("alertname", "HighLatency", "service", "users")
	if svc.IncidentID != db.IncidentID {
		t.Fatalf("the orders service alert opened INC-%d; want it in the database's INC-%d", svc.IncidentID, db.IncidentID)
	}
	if users.IncidentID == db.IncidentID || usvc.IncidentID != users.IncidentID {
		t.Fatalf("independent failure on the users side: incidents %d, %d; want one incident apart from INC-%d",
			users.IncidentID, usvc.IncidentID, db.IncidentID)
	}
	inc := h.incident(db.IncidentID)
	if inc.Service != "orders" {
		t.Fatalf("service %q: db-orders names no service; the joining alert's CI svc-orders does (orders)", inc.Service)
	}
	if inc.RootCause.CI != "db-orders" || !strings.Contains(inc.RootCause.Reason, "1 of the 1 other affected CIs depend on db-orders (database)") {
		t.Fatalf("root cause = %+v", inc.RootCause)
	}
	var joined triage.Explanation
	for _, a := range inc.Alerts {
		if a.Labels["alertname"] == "HighErrorRate" {
			joined = a.Joined
			if a.Binding == nil || a.Binding.CI != "svc-orders" || a.Binding.Label != "service" {
				t.Fatalf("binding = %+v", a.Binding)
			}
		}
	}
	if want := []string{"svc-orders", "depends_on", "db-orders"}; !slices.Equal(joined.Path, want) {
		t.Fatalf("path = %v, want %v", joined.Path, want)
	}
	if !strings.Contains(joined.Reason, "svc-orders depends on the incident's CI db-orders (1 hop)") {
		t.Fatalf("reason = %q", joined.Reason)
	}
}

func TestRootCauseMovesToTheCauseArrivingLater(t *testing.T) {
	h := newTopoHarness(t, CorrelatorOptions{MaxHops: 3}, Options{})
	svc := h.fire("alertname", "HighErrorRate", "ci", "svc-orders")
	if got := h.incident(svc.IncidentID).RootCause.CI; got != "svc-orders" {
		t.Fatalf("root cause %q with one alert, want svc-orders", got)
	}
	h.at(30 * time.Second)
	host := h.fire("alertname", "HostDown", "instance", "10.0.0.1:9100")
	if host.IncidentID != svc.IncidentID {
		t.Fatalf("host-1 alert opened INC-%d: svc-orders depends on it in 2 hops", host.IncidentID)
	}
	inc := h.incident(svc.IncidentID)
	if inc.RootCause.CI != "host-1" || inc.CI != "host-1" {
		t.Fatalf("root cause = %+v (ci %s), want host-1", inc.RootCause, inc.CI)
	}
	if !slices.Contains(h.kinds(svc.IncidentID), triage.KindRootCause) {
		t.Fatalf("no root_cause timeline entry: %v", h.kinds(svc.IncidentID))
	}
	var path []string
	for _, a := range inc.Alerts {
		if a.Labels["alertname"] == "HostDown" {
			path = a.Joined.Path
		}
	}
	if want := []string{"svc-orders", "depends_on", "db-orders", "runs_on", "host-1"}; !slices.Equal(path, want) {
		t.Fatalf("path = %v, want %v", path, want)
	}
}

func TestMaxHopsBoundsTopology(t *testing.T) {
	for _, tc := range []struct {
		hops int
		same bool
	}{{1, false}, {2, true}, {3, true}} {
		h := newTopoHarness(t, CorrelatorOptions{MaxHops: tc.hops}, Options{})
		a := h.fire("alertname", "HighErrorRate", "ci", "svc-orders")
		h.at(time.Minute)
		b := h.fire("alertname", "HostDown", "ci", "host-1") // svc-orders → db-orders → host-1: 2 hops
		if (a.IncidentID == b.IncidentID) != tc.same {
			t.Errorf("max_hops %d: same incident = %v, want %v", tc.hops, a.IncidentID == b.IncidentID, tc.same)
		}
	}
}

func TestSharedCauseMergesIncidents(t *testing.T) {
	h := newTopoHarness(t, CorrelatorOptions{MaxHops: 3}, Options{})
	web := h.fire("alertname", "HighLatency", "ci", "svc-web")
	h.at(10 * time.Second)
	cache := h.fire("alertname", "RedisDown", "ci", "cache-orders") // siblings on host-2: not linked
	if web.IncidentID == cache.IncidentID {
		t.Fatal("svc-web and cache-orders share only host-2: they must not join before host-2 alerts")
	}
	h.at(20 * time.Second)
	host := h.fire("alertname", "HostDown", "ci", "host-2")
	if host.IncidentID != web.IncidentID {
		t.Fatalf("host-2 alert went to INC-%d, want the oldest, INC-%d", host.IncidentID, web.IncidentID)
	}
	dst, src := h.incident(web.IncidentID), h.incident(cache.IncidentID)
	if dst.AlertCount != 3 || len(dst.Alerts) != 3 || !slices.Equal(dst.Merged, []uint64{cache.IncidentID}) {
		t.Fatalf("merged incident: %d alerts (%d listed), merged %v; want 3 alerts from INC-%d", dst.AlertCount, len(dst.Alerts), dst.Merged, cache.IncidentID)
	}
	if src.MergedInto == nil || *src.MergedInto != dst.ID || src.Status != triage.IncidentResolved {
		t.Fatalf("source incident: merged_into %v status %s", src.MergedInto, src.Status)
	}
	if dst.RootCause.CI != "host-2" {
		t.Fatalf("root cause %+v, want host-2", dst.RootCause)
	}
	if h.e.OpenIncidents() != 1 {
		t.Fatalf("%d open incidents, want 1", h.e.OpenIncidents())
	}
	// The merged alerts keep living in the surviving incident.
	h.at(time.Minute)
	if r := h.fire("alertname", "RedisDown", "ci", "cache-orders"); !r.Duplicate || r.IncidentID != dst.ID {
		t.Fatalf("repeat of a merged alert: %+v, want a duplicate in INC-%d", r, dst.ID)
	}
	h.at(2 * time.Minute)
	for _, l := range [][]string{{"ci", "svc-web", "alertname", "HighLatency"}, {"ci", "cache-orders", "alertname", "RedisDown"}, {"ci", "host-2", "alertname", "HostDown"}} {
		h.resolve(l...)
	}
	h.at(8 * time.Minute)
	h.tick()
	if got := h.incident(dst.ID).Status; got != triage.IncidentResolved {
		t.Fatalf("after all alerts resolved and resolve_after, status %s", got)
	}
}

func TestTopologyWindowAndMaxAge(t *testing.T) {
	h := newTopoHarness(t, CorrelatorOptions{MaxHops: 3, MaxAge: 30 * time.Minute}, Options{})
	a := h.fire("alertname", "PostgresDown", "ci", "db-orders")
	h.at(11 * time.Minute)
	if b := h.fire("alertname", "HighErrorRate", "ci", "svc-orders"); b.IncidentID == a.IncidentID {
		t.Fatal("joined an incident silent for 11m with a 10m window")
	}
	h2 := newTopoHarness(t, CorrelatorOptions{MaxHops: 3, MaxAge: 30 * time.Minute}, Options{})
	a = h2.fire("alertname", "PostgresDown", "ci", "db-orders")
	for m := 5; m <= 35; m += 5 {
		h2.at(time.Duration(m) * time.Minute)
		h2.fire("alertname", "PostgresDown", "ci", "db-orders") // keeps it active
	}
	h2.at(36 * time.Minute)
	if b := h2.fire("alertname", "HighErrorRate", "ci", "svc-orders"); b.IncidentID == a.IncidentID {
		t.Fatal("an incident open for 36m absorbed a new alert with max_incident_age 30m")
	}
}

func TestUnboundAlertsFallBackToGroupBy(t *testing.T) {
	h := newTopoHarness(t, CorrelatorOptions{MaxHops: 3}, Options{})
	a := h.fire("alertname", "CertificateExpiring", "domain", "a.example")
	b := h.fire("alertname", "CertificateExpiring", "domain", "b.example")
	c := h.fire("alertname", "HostDown", "ci", "host-1")
	if a.IncidentID != b.IncidentID || c.IncidentID == a.IncidentID {
		t.Fatalf("incidents %d %d %d: want the two unbound alerts together by group_by and the bound one apart", a.IncidentID, b.IncidentID, c.IncidentID)
	}
	if got := h.incident(a.IncidentID).RootCause.Reason; got != "no alert names a configuration item" {
		t.Fatalf("root cause reason %q", got)
	}
}

func TestMinAlertsHoldsIncident(t *testing.T) {
	h := newTopoHarness(t, CorrelatorOptions{MaxHops: 3}, Options{MinAlerts: 2})
	a := h.fire("alertname", "PostgresDown", "ci", "db-orders")
	if !h.incident(a.IncidentID).Held {
		t.Fatal("incident with 1 alert of min 2 is not held")
	}
	h.at(time.Minute)
	h.fire("alertname", "HighErrorRate", "ci", "svc-orders")
	if inc := h.incident(a.IncidentID); inc.Held || !slices.Contains(h.kinds(inc.ID), triage.KindReleased) {
		t.Fatalf("held = %v, timeline %v: want released at 2 alerts", inc.Held, h.kinds(inc.ID))
	}
}

// fakeRules implements Rules for engine tests.
type fakeRules struct {
	drop     string // alertname to drop
	priority string // set on every admitted alert
	linkBy   string // correlate rule: same value of this label
}

func (f fakeRules) Admit(ev *triage.Event, ci *triage.CI, now time.Time) Admission {
	if ev.Labels["alertname"] == f.drop {
		return Admission{Drop: true, Rule: "drop-" + f.drop, Reason: "noise"}
	}
	r := Admission{Routing: triage.Routing{Priority: f.priority, AssignmentGroup: "dba"}}
	if ci != nil && ci.Type == "database" {
		r.Enriched = []string{"dba-routing"}
		r.Routing.Project = "DBA"
	}
	return r
}

func (f fakeRules) Correlate(a *triage.Alert, ci *triage.CI, inc *triage.Incident) (string, bool) {
	if f.linkBy != "" && a.Labels[f.linkBy] != "" && a.Labels[f.linkBy] == inc.Labels[f.linkBy] {
		return "same-" + f.linkBy, true
	}
	return "", false
}

func (f fakeRules) Group(a *triage.Alert, ci *triage.CI) (GroupRule, bool) { return GroupRule{}, false }

func (f fakeRules) CorrelateKeys() [][]string {
	if f.linkBy == "" {
		return nil
	}
	return [][]string{nil} // scanned, not indexed
}

func TestRulesDropEnrichAndCorrelate(t *testing.T) {
	h := newTopoHarness(t, CorrelatorOptions{MaxHops: 3, Rules: fakeRules{linkBy: "cluster"}},
		Options{Rules: fakeRules{drop: "Watchdog", priority: "P2", linkBy: "cluster"}})
	if r := h.fire("alertname", "Watchdog"); !r.Dropped || r.Rule != "drop-Watchdog" || r.IncidentID != 0 {
		t.Fatalf("Watchdog: %+v, want dropped by drop-Watchdog", r)
	}
	a := h.fire("alertname", "PostgresDown", "ci", "db-orders", "severity", "info", "cluster", "eu1")
	inc := h.incident(a.IncidentID)
	if inc.Priority != "P2" || inc.Project != "DBA" || inc.AssignmentGroup != "dba" {
		t.Fatalf("routing: priority %s project %q group %q; want P2 (rule over info's P4), DBA, dba", inc.Priority, inc.Project, inc.AssignmentGroup)
	}
	if !strings.Contains(inc.Alerts[0].Joined.Reason, "enriched by dba-routing") {
		t.Fatalf("explanation %q does not name the enrich rule", inc.Alerts[0].Joined.Reason)
	}
	h.at(time.Minute)
	b := h.fire("alertname", "DiskFull", "ci", "host-3", "cluster", "eu1") // far in topology, same cluster
	if b.IncidentID != a.IncidentID {
		t.Fatalf("correlate rule did not link: INC-%d vs INC-%d", b.IncidentID, a.IncidentID)
	}
	for _, al := range h.incident(a.IncidentID).Alerts {
		if al.Labels["alertname"] == "DiskFull" && al.Joined.Rule != "same-cluster" {
			t.Fatalf("joined = %+v, want rule same-cluster", al.Joined)
		}
	}
}

func TestTopologyGroupingSameAfterRestore(t *testing.T) {
	run := func(restart bool) (uint64, string) {
		h := newTopoHarness(t, CorrelatorOptions{MaxHops: 3}, Options{})
		h.fire("alertname", "HighLatency", "ci", "svc-web")
		h.at(10 * time.Second)
		h.fire("alertname", "RedisDown", "ci", "cache-orders")
		if restart {
			e := NewEngine(h.e.opts, NewCorrelator(h.e.opts.Topology, CorrelatorOptions{Window: 10 * time.Minute, MaxHops: 3, GroupBy: []string{"alertname"}}))
			for _, inc := range h.m.Incidents() {
				e.Restore(inc, inc.Alerts)
			}
			h.e = e
		}
		h.at(20 * time.Second)
		r := h.fire("alertname", "HostDown", "ci", "host-2")
		return r.IncidentID, h.incident(r.IncidentID).RootCause.CI
	}
	id1, rc1 := run(false)
	id2, rc2 := run(true)
	if id1 != id2 || rc1 != rc2 {
		t.Fatalf("live: INC-%d root %s; after restart: INC-%d root %s", id1, rc1, id2, rc2)
	}
}

func TestFlappingAlertIsHeld(t *testing.T) {
	h := newTopoHarness(t, CorrelatorOptions{MaxHops: 3}, Options{Flapping: Flapping{Changes: 4, Window: 10 * time.Minute}})
	x := []string{"alertname", "LinkFlap", "ci", "sw-a"}
	id := h.fire(x...).IncidentID
	for i, step := range []func(...string) Result{h.resolve, h.fire, h.resolve, h.fire, h.resolve} {
		h.at(time.Duration(i+1) * time.Minute)
		step(x...)
	}
	// Flapping from the 4th change (minute 4); the resolve at minute 5 is held.
	h.at(14 * time.Minute)
	h.tick()
	inc := h.incident(id)
	if inc.Status != triage.IncidentOpen || inc.FiringCount != 1 || !inc.Alerts[0].Flapping {
		t.Fatalf("at 14m: status %s firing %d flapping %v; want open, 1, true (the resolve at 5m is held)",
			inc.Status, inc.FiringCount, inc.Alerts[0].Flapping)
	}
	count := func(kind string) (n int) {
		for _, k := range h.kinds(id) {
			if k == kind {
				n++
			}
		}
		return n
	}
	if got := count(triage.KindAlertResolved); got != 2 {
		t.Fatalf("%d alert_resolved entries, want 2 (minutes 1 and 3; minute 5 is held)", got)
	}
	h.at(15 * time.Minute) // 10m without a change: stops flapping, settles resolved
	h.tick()
	if inc := h.incident(id); inc.Alerts[0].Flapping || inc.FiringCount != 0 || inc.AutoResolveAt == nil || count(triage.KindFlapping) != 2 {
		t.Fatalf("at 15m: flapping %v firing %d auto-resolve %v, %d flapping entries", inc.Alerts[0].Flapping, inc.FiringCount, inc.AutoResolveAt, count(triage.KindFlapping))
	}
	h.at(20 * time.Minute)
	h.tick()
	if got := h.incident(id).Status; got != triage.IncidentResolved {
		t.Fatalf("at 20m status %s, want resolved 5m after it settled", got)
	}
}

// FuzzParseTopology: any bytes give a topology or an error, never a panic,
// and a topology binds and correlates without panicking.
func FuzzParseTopology(f *testing.F) {
	f.Add([]byte(testCMDB))
	f.Add([]byte(`{"cis": [{"id": "a", "aliases": ["x"]}, {"id": "b"}], "relations": [{"from": "a", "to": "b", "type": "runs_on"}]}`))
	f.Add([]byte("cis:\n  - {id: a}\n  - {id: a}\n"))
	f.Add([]byte("cis: [{id: a, name: a, aliases: [a]}]\nrelations: [{from: a, to: a, type: depends_on}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := ParseTopology("f.yaml", data)
		if err != nil {
			if !strings.Contains(err.Error(), "f.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		e := NewEngine(Options{Topology: topo, ResolveAfter: time.Minute}, NewCorrelator(topo, CorrelatorOptions{Window: time.Minute, MaxHops: 3}))
		for i, ci := range topo.CIs() {
			if i >= 20 {
				break
			}
			ev := triage.Event{Labels: map[string]string{"alertname": "X", "ci": ci.ID}}
			if ev.Normalize(t0) != nil {
				continue
			}
			e.Process(&ev, t0.Add(time.Duration(i)*time.Second))
		}
	})
}

func TestParseTopologyRefusesEmptyAndTakesJSONErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"empty", "", "c:1: cis: required (write cis: [] for an empty CMDB)"},
		{"comments only", "# nothing\n", "c:1: cis: required"},
		{"relations only", "relations: []\n", "c:1: cis: required"},
		{"empty JSON object", "{}", "c:1: cis: required"},
		{"JSON duplicate id has its line", "{\"cis\": [\n  {\"id\": \"a\"},\n  {\"id\": \"a\"}\n]}\n", `c:3: cis.1.id: duplicate id "a"`},
		{"JSON unknown field has its line", "{\"cis\": [\n  {\"id\": \"a\"},\n  {\"id\": \"b\", \"colour\": \"red\"}\n]}\n", "c:3: "},
		{"JSON keys are case-sensitive", `{"CIS": [{"ID": "a"}]}`, "c:1: "},
		{"JSON trailing data", `{"cis": []}]`, "c: did not find expected <document start>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTopology("c", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	for _, doc := range []string{"cis: []\n", `{"cis": []}`, "{cis: [{id: a}, {id: b}], relations: [{from: a, to: b, type: depends_on}]}\n"} {
		if _, err := ParseTopology("c", []byte(doc)); err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
	}
}

// Above the YAML limit only JSON is taken, by encoding/json, still strict.
func TestParseLargeJSONTopology(t *testing.T) {
	const limit = 16
	tests := []struct{ name, doc, want string }{
		{"ok", `{"cis": [{"id": "a"}, {"id": "b"}], "relations": [{"from": "a", "to": "b", "type": "runs_on"}]}`, ""},
		{"YAML too large", "cis:\n  - {id: a}\n  - {id: b}\n", "c: YAML CMDB of"},
		{"flow YAML too large", "{cis: [{id: a}, {id: b}]}", "c: YAML CMDB of"},
		{"unknown field", `{"relations": [], "x": 1}`, `c: json: unknown field "x"`},
		{"no cis", `{"relations": []}          `, "c:1: cis: required"},
		{"trailing data", "{\"cis\": [{\"id\": \"a\"}]}\n\n]", "c:3: unexpected data after the JSON object"},
		{"syntax error line", "{\"cis\": [\n {\"id\": \"a\"},\n {\"id\": }\n]}", "c:3: invalid character '}'"},
		{"duplicate id", `{"cis": [{"id": "a"}, {"id": "a"}]}`, `c: cis.1.id: duplicate id "a"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo, err := parseTopology("c", []byte(tc.doc), limit)
			if tc.want == "" {
				if err != nil || topo.Len() != 2 || topo.Relations() != 1 {
					t.Fatalf("%v %v", topo, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
