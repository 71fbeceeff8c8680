package logs

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var loghubSystems = []string{"HDFS", "Hadoop", "Spark", "BGL", "HPC", "Windows", "Linux", "Proxifier"}

type loghubLine struct{ content, event string }

func readLoghub(tb testing.TB, system string) []loghubLine {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", "loghub", system+"_2k.log_structured.csv"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		tb.Fatalf("%s: %v", system, err)
	}
	ci, ei := -1, -1
	for i, h := range recs[0] {
		switch h {
		case "Content":
			ci = i
		case "EventId":
			ei = i
		}
	}
	if ci < 0 || ei < 0 {
		tb.Fatalf("%s: no Content or EventId column", system)
	}
	out := make([]loghubLine, 0, len(recs)-1)
	for _, r := range recs[1:] {
		out = append(out, loghubLine{content: r[ci], event: r[ei]})
	}
	return out
}

// groupingAccuracy is the LogPAI benchmark's grouping accuracy: a line is
// right when the lines sharing its predicted template are exactly the lines
// sharing its ground-truth event.
func groupingAccuracy(truth []string, pred []uint64) float64 {
	byTruth := map[string][]int{}
	byPred := map[uint64][]int{}
	for i := range truth {
		byTruth[truth[i]] = append(byTruth[truth[i]], i)
		byPred[pred[i]] = append(byPred[pred[i]], i)
	}
	correct := 0
	for _, idx := range byPred {
		t := truth[idx[0]]
		if len(byTruth[t]) == len(idx) {
			ok := true
			for _, i := range idx {
				if truth[i] != t {
					ok = false
					break
				}
			}
			if ok {
				correct += len(idx)
			}
		}
	}
	return float64(correct) / float64(len(truth))
}

func mineLoghub(tb testing.TB, opts Options, lines []loghubLine) (*Miner, []uint64) {
	m, err := NewMiner(opts)
	if err != nil {
		tb.Fatal(err)
	}
	ids := make([]uint64, len(lines))
	for i, l := range lines {
		ids[i], _ = m.Add(l.content)
	}
	return m, ids
}

func TestLoghubAccuracy(t *testing.T) {
	var sum float64
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-10s %8s %9s %7s\n", "system", "accuracy", "templates", "events")
	for _, sys := range loghubSystems {
		lines := readLoghub(t, sys)
		m, ids := mineLoghub(t, Options{}, lines)
		truth := make([]string, len(lines))
		events := map[string]bool{}
		for i, l := range lines {
			truth[i] = l.event
			events[l.event] = true
		}
		acc := groupingAccuracy(truth, ids)
		sum += acc
		fmt.Fprintf(&b, "%-10s %8.4f %9d %7d\n", sys, acc, m.Len(), len(events))
		if os.Getenv("LOGHUB_DEBUG") == sys {
			debugMistakes(t, m, lines, ids)
		}
	}
	mean := sum / float64(len(loghubSystems))
	fmt.Fprintf(&b, "%-10s %8.4f\n", "mean", mean)
	t.Log(b.String())
	if mean < 0.90 {
		t.Errorf("mean grouping accuracy %.4f, want >= 0.90", mean)
	}
}

// debugMistakes logs, per wrongly grouped ground-truth event, the templates
// its lines went to (LOGHUB_DEBUG=<system>).
func debugMistakes(t *testing.T, m *Miner, lines []loghubLine, ids []uint64) {
	byEvent := map[string]map[uint64]int{}
	byID := map[uint64]map[string]int{}
	example := map[uint64]string{}
	for i, l := range lines {
		if byEvent[l.event] == nil {
			byEvent[l.event] = map[uint64]int{}
		}
		byEvent[l.event][ids[i]]++
		if byID[ids[i]] == nil {
			byID[ids[i]] = map[string]int{}
		}
		byID[ids[i]][l.event]++
		if _, ok := example[ids[i]]; !ok {
			example[ids[i]] = l.content
		}
	}
	var evs []string
	for e := range byEvent {
		evs = append(evs, e)
	}
	sort.Strings(evs)
	for _, e := range evs {
		tpl := byEvent[e]
		bad := len(tpl) > 1
		for id := range tpl {
			if len(byID[id]) > 1 {
				bad = true
			}
		}
		if !bad {
			continue
		}
		for id, n := range tpl {
			tt, _ := m.Template(id)
			t.Logf("%s: %d lines -> #%d %q (events %v) e.g. %q", e, n, id, tt.Text, byID[id], example[id])
		}
	}
}
