package scenario

import (
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/rules"
)

// large is Generate(Large()), made once per test binary.
var large = sync.OnceValue(func() *Scenario { return Generate(Large()) })

// drive runs normalised events through eng on the clock of the events, as
// correlate.Replay does, flushing every 100 events as the service batches.
func drive(eng *correlate.Engine, evs []triage.Event) {
	var now time.Time
	for i := range evs {
		if t := evs[i].Time; t.After(now) {
			now = t
		}
		eng.Tick(now)
		eng.Process(&evs[i], now)
		if i%100 == 99 {
			eng.Flush()
		}
	}
	eng.Tick(now)
	eng.Flush()
}

func benchTopology(b *testing.B, sc *Scenario) *correlate.Topology {
	b.Helper()
	topo, err := correlate.NewTopology(sc.CMDB)
	if err != nil {
		b.Fatal(err)
	}
	return topo
}

// benchReplay replays events (not yet normalised) b.N times through a
// fresh engine with the topology correlator and reports events/s.
func benchReplay(b *testing.B, topo *correlate.Topology, events []triage.Event) {
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for range b.N {
		b.StopTimer()
		evs, err := Normalized(events) // the engine owns what it is given
		if err != nil {
			b.Fatal(err)
		}
		eng := correlate.NewEngine(EngineOptions(topo), NewCorrelator(topo))
		b.StartTimer()
		drive(eng, evs)
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkStormTopology10k: the Large() scenario (10k CIs, 600 cascading
// faults, up to 30 at once, noise and flapping) through the engine with the
// topology correlator, one goroutine.
func BenchmarkStormTopology10k(b *testing.B) {
	sc := large()
	benchReplay(b, benchTopology(b, sc), sc.Events)
}

// BenchmarkDuplicateHeavy: the Large() storm where every firing
// notification also arrives four more times (an HA pair of Alertmanagers
// and overlapping routes): at least 90% of the events repeat a live alert.
func BenchmarkDuplicateHeavy(b *testing.B) {
	sc := large()
	var events []triage.Event
	for _, ev := range sc.Events {
		events = append(events, ev)
		if ev.Status == triage.AlertFiring {
			for range 4 {
				events = append(events, ev)
			}
		}
	}
	firing := make(map[string]bool)
	repeats := 0
	for _, ev := range events {
		if firing[ev.Fingerprint] {
			repeats++
		}
		firing[ev.Fingerprint] = ev.Status == triage.AlertFiring
	}
	share := float64(repeats) / float64(len(events))
	if share < 0.9 {
		b.Fatalf("only %.1f%% of the events repeat a live alert", 100*share)
	}
	b.ReportMetric(100*share, "%repeats")
	benchReplay(b, benchTopology(b, sc), events)
}

// BenchmarkMemoryPerActiveAlert reports the live heap the engine and the
// topology correlator hold per active alert, with 100k alerts firing at
// once on the 10k-CI topology (ten per CI, over 100 minutes, none resolved).
func BenchmarkMemoryPerActiveAlert(b *testing.B) {
	const n = 100000
	sc := large()
	topo := benchTopology(b, sc)
	cis := topo.CIs()
	start := Large().Start
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		evs := make([]triage.Event, n)
		for j := range evs {
			ci := cis[j%len(cis)]
			name := "Alert" + strconv.Itoa(j/len(cis))
			at := start.Add(time.Duration(j) * 60 * time.Millisecond)
			evs[j] = triage.Event{Source: "alertmanager", Status: triage.AlertFiring,
				Labels:      map[string]string{"alertname": name, "ci": ci.ID, "severity": "warning", "env": "prod", "cluster": ci.Attributes["dc"]},
				Annotations: map[string]string{"summary": name + " on " + ci.Name},
				StartsAt:    at, Time: at}
			if err := evs[j].Normalize(at); err != nil {
				b.Fatal(err)
			}
		}
		eng := correlate.NewEngine(EngineOptions(topo), NewCorrelator(topo))
		drive(eng, evs)
		if got := eng.LiveAlerts(); got != n {
			b.Fatalf("%d live alerts, want %d", got, n)
		}
		evs = nil // the engine keeps what it needs of the events
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/alert")
		b.ReportMetric(float64(eng.OpenIncidents()), "incidents")
		runtime.KeepAlive(eng)
		runtime.KeepAlive(evs)
	}
}

// benchRules are 20 rules of every kind, as an SRE team might run: none
// drops the scenario's alerts, so every alert pays for all of them.
const benchRules = `rules:
  - {name: drop-watchdog, kind: drop, if: 'alert.labels.alertname == "Watchdog"'}
  - {name: drop-info, kind: drop, if: 'alert.severity == "info" && alert.labels.env == "dev"'}
  - {name: drop-test, kind: drop, if: 'alert.labels.namespace startsWith "test-"'}
  - {name: drop-synthetic, kind: drop, if: 'alert.labels.job == "blackbox-synthetic"'}
  - {name: dba, kind: enrich, if: 'ci.type == "database"', set: {assignment_group: dba, jira_project: DBA, labels: {team: dba}}}
  - {name: net, kind: enrich, if: 'ci.type == "network_switch"', set: {assignment_group: neteng, jira_project: NET}}
  - {name: cache, kind: enrich, if: 'ci.type == "cache"', set: {assignment_group: platform}}
  - {name: queue, kind: enrich, if: 'ci.type == "queue"', set: {assignment_group: platform}}
  - {name: tier1, kind: enrich, if: 'ci.attributes.tier == "1" && alert.severity == "critical"', set: {priority: P1}}
  - {name: page-sev, kind: enrich, if: 'alert.labels.page == "true"', set: {severity: critical}}
  - {name: cluster-eu, kind: correlate, if: 'alert.labels.cluster != "" && alert.labels.cluster == incident.labels.cluster && alert.labels.alertname == incident.labels.alertname'}
  - {name: certs, kind: group, if: 'alert.labels.alertname == "CertificateExpiringSoon"', by: [alertname], window: 24h}
  - {name: backups, kind: group, if: 'alert.labels.alertname startsWith "Backup"', by: [alertname, job], window: 1h}
  - {name: patch-1, kind: maintenance, ci: [db-0001, db-0002], schedule: "0 2 * * SUN", duration: 2h, time_zone: Europe/Berlin}
  - {name: patch-2, kind: maintenance, ci: [host-0001], schedule: "0 3 * * SAT", duration: 1h, time_zone: America/New_York}
  - {name: staging, kind: maintenance, if: 'alert.labels.env == "staging"', action: annotate, schedule: "0 0 * * *", duration: 6h}
  - {name: freeze, kind: maintenance, if: 'alert.labels.service == "legacy"', start: 2020-01-01T00:00:00Z, end: 2020-01-02T00:00:00Z}
  - {name: drop-noisy-disk, kind: drop, if: 'alert.labels.alertname == "NodeFilesystemAlmostFull" && alert.labels.mountpoint == "/boot"'}
  - {name: drop-flappy-probe, kind: drop, if: 'alert.labels.alertname == "ProbeFailed" && alert.labels.target matches "^canary-"'}
  - {name: owner, kind: enrich, if: 'ci.attributes.owner_group != ""', set: {labels: {owner: team}}}
`

// BenchmarkStormTopology10kWithRules is the storm with 20 rules of every
// kind, a correlate rule among them (tried against the open incidents for
// each new alert).
func BenchmarkStormTopology10kWithRules(b *testing.B) {
	sc := large()
	topo := benchTopology(b, sc)
	rs, err := rules.Parse("bench.yaml", []byte(benchRules))
	if err != nil {
		b.Fatal(err)
	}
	opts := EngineOptions(topo)
	opts.Rules = rs
	co := correlatorOptions()
	co.Rules = rs
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for range b.N {
		b.StopTimer()
		evs, err := Normalized(sc.Events)
		if err != nil {
			b.Fatal(err)
		}
		eng := correlate.NewEngine(opts, correlate.NewCorrelator(topo, co))
		b.StartTimer()
		drive(eng, evs)
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
