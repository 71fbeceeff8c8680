package logs

import (
	"fmt"
	"runtime"
	"testing"
)

func BenchmarkMine(b *testing.B) {
	var msgs []string
	for _, sys := range loghubSystems {
		for _, l := range readLoghub(b, sys) {
			msgs = append(msgs, l.content)
		}
	}
	var bytes int64
	for _, s := range msgs {
		bytes += int64(len(s)) + 1
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, _ := NewMiner(Options{})
		for _, s := range msgs {
			m.Add(s)
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(msgs))/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkMemory100kTemplates reports the live heap per template of a miner
// holding 100k templates.
func BenchmarkMemory100kTemplates(b *testing.B) {
	const n = 100000
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = shape(i)
	}
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, _ := NewMiner(Options{MaxTemplates: n})
		for _, s := range msgs {
			m.Add(s)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if m.Len() != n {
			b.Fatal(fmt.Sprintf("Len %d, want %d", m.Len(), n))
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(m.Len()), "bytes/template")
		runtime.KeepAlive(m)
	}
}
