package correlate

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage"
)

// benchEvents builds n normalised events over `unique` distinct alerts in
// 200 groups.
func benchEvents(b *testing.B, n, unique int) []triage.Event {
	b.Helper()
	evs := make([]triage.Event, n)
	for i := range evs {
		k := i % unique
		evs[i] = triage.Event{Source: "alertmanager", Labels: map[string]string{
			"alertname": fmt.Sprintf("Alert%d", k%20),
			"service":   fmt.Sprintf("svc%d", k%10),
			"instance":  fmt.Sprintf("10.0.%d.%d:9100", k/250, k%250),
			"job":       "node",
			"severity":  "warning",
		}, Annotations: map[string]string{"summary": "something is wrong"}}
		if err := evs[i].Normalize(t0); err != nil {
			b.Fatal(err)
		}
	}
	return evs
}

// BenchmarkEngineDuplicates: the hot path of a storm of repeats, one goroutine.
func BenchmarkEngineDuplicates(b *testing.B) {
	evs := benchEvents(b, 100000, 1000)
	e := NewEngine(Options{ResolveAfter: time.Minute, ReopenWindow: time.Minute}, NewLabelGrouper([]string{"alertname", "service"}, time.Hour))
	for i := range evs[:1000] {
		e.Process(&evs[i], t0)
	}
	e.Flush()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Process(&evs[i%len(evs)], t0)
		if i%1000 == 999 {
			e.Flush()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEngineNewAlerts: every event a new alert, grouped into incidents.
func BenchmarkEngineNewAlerts(b *testing.B) {
	evs := benchEvents(b, 200000, 200000)
	b.ReportAllocs()
	b.ResetTimer()
	var e *Engine
	for i := 0; i < b.N; i++ {
		if i%len(evs) == 0 {
			b.StopTimer()
			e = NewEngine(Options{ResolveAfter: time.Minute, ReopenWindow: time.Minute}, NewLabelGrouper([]string{"alertname", "service"}, time.Hour))
			b.StartTimer()
		}
		e.Process(&evs[i%len(evs)], t0)
		if i%1000 == 999 {
			e.Flush()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEngineMemoryPerAlert reports the heap held per live alert.
func BenchmarkEngineMemoryPerAlert(b *testing.B) {
	const n = 100000
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		evs := benchEvents(b, n, n)
		e := NewEngine(Options{ResolveAfter: time.Minute, ReopenWindow: time.Minute}, NewLabelGrouper([]string{"alertname", "service"}, time.Hour))
		for j := range evs {
			e.Process(&evs[j], t0)
		}
		e.Flush()
		evs = nil // the engine keeps what it needs of the events
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/alert")
		runtime.KeepAlive(e)
	}
}

// benchSteps runs b.N steps of 200 changed alerts through an engine and
// hands each step's record to write.
func benchSteps(b *testing.B, write func(i int, rec *Record) error) {
	evs := benchEvents(b, 20000, 20000)
	e := NewEngine(Options{ResolveAfter: time.Minute, ReopenWindow: time.Minute}, NewLabelGrouper([]string{"alertname", "service"}, time.Hour))
	var rb recordBuilder
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 200; j++ {
			e.Process(&evs[(i*200+j)%len(evs)], t0)
		}
		ch := e.Flush()
		rec, err := rb.build(nil, t0, &ch, e.LastID())
		if err != nil {
			b.Fatal(err)
		}
		if err := write(i, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckpoint: building the record of 200 changed alerts with
// their incidents and applying it to bbolt durably, as a checkpoint does.
func BenchmarkCheckpoint(b *testing.B) {
	st, err := OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchSteps(b, func(i int, rec *Record) error {
		rec.LSN = uint64(i + 1)
		return st.Apply([]*Record{rec})
	})
}

// BenchmarkWALAppend: one step's record of 200 changed alerts, written and
// fsynced: the cost on the path of every acknowledgement.
func BenchmarkWALAppend(b *testing.B) {
	w, err := OpenWAL(b.TempDir(), 0, 0, func(*Record) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	benchSteps(b, func(_ int, rec *Record) error { return w.AppendAll([]*Record{rec}) })
}

// BenchmarkHubAlertMergesStorm: 10k incidents on applications behind one
// core switch (each alone: siblings), then the switch alerts and all of
// them merge into one. Reports the time of that one alert.
func BenchmarkHubAlertMergesStorm(b *testing.B) {
	var cis, rels strings.Builder
	cis.WriteString("cis:\n  - {id: core}\n")
	for s := 0; s < 10; s++ {
		fmt.Fprintf(&cis, "  - {id: sw%d}\n", s)
		fmt.Fprintf(&rels, "  - {from: sw%d, to: core, type: connected_to}\n", s)
		for h := 0; h < 20; h++ {
			fmt.Fprintf(&cis, "  - {id: h%d-%d}\n", s, h)
			fmt.Fprintf(&rels, "  - {from: h%d-%d, to: sw%d, type: connected_to}\n", s, h, s)
			for a := 0; a < 50; a++ {
				fmt.Fprintf(&cis, "  - {id: app%d-%d-%d}\n", s, h, a)
				fmt.Fprintf(&rels, "  - {from: app%d-%d-%d, to: h%d-%d, type: runs_on}\n", s, h, a, s, h)
			}
		}
	}
	topo, err := ParseTopology("hub.yaml", []byte(cis.String()+"relations:\n"+rels.String()))
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for range b.N {
		e := NewEngine(Options{ResolveAfter: 5 * time.Minute, ReopenWindow: time.Hour, Topology: topo},
			NewCorrelator(topo, CorrelatorOptions{Window: 10 * time.Minute, MaxHops: 3, GroupBy: []string{"alertname"}}))
		send := func(ci string) {
			ev := triage.Event{Labels: map[string]string{"alertname": "Down", "ci": ci}}
			_ = ev.Normalize(t0)
			e.Process(&ev, t0)
			e.Flush()
		}
		for _, c := range topo.CIs() {
			if strings.HasPrefix(c.ID, "app") {
				send(c.ID)
			}
		}
		if e.OpenIncidents() != 10000 {
			b.Fatalf("%d open incidents before the switch alert, want 10000", e.OpenIncidents())
		}
		start := time.Now()
		send("core")
		total += time.Since(start)
		if e.OpenIncidents() != 1 {
			b.Fatalf("%d open incidents after the switch alert, want 1", e.OpenIncidents())
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/hub-alert")
}

// BenchmarkBuildRecord: encoding one step's changes into a record, the
// part of a step the JSON encoders weigh on: 200 new alerts with their
// incidents and timeline entries.
func BenchmarkBuildRecord(b *testing.B) {
	evs := benchEvents(b, 200, 200)
	e := NewEngine(Options{ResolveAfter: time.Minute, ReopenWindow: time.Minute}, NewLabelGrouper([]string{"alertname", "service"}, time.Hour))
	for i := range evs {
		e.Process(&evs[i], t0)
	}
	ch := e.Flush() // 200 alert details, 20 incidents, 200 timeline entries
	var rb recordBuilder
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rb.build(nil, t0, &ch, e.LastID()); err != nil {
			b.Fatal(err)
		}
	}
}
