package scenario

import (
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
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
