package scenario

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func isFault(group string) bool { return strings.HasPrefix(group, "fault-") }

// TestQuality replays Small() of seeds 1 to 5 with Triage's topology
// correlator and the two baselines, and holds the correlator to a median
// pairwise F1 of 0.95 and a root-cause hit rate of 0.90, above both
// baselines on every seed. A failure lists the faults it split or merged.
func TestQuality(t *testing.T) {
	var rows []Row
	byRun := map[string][]Metrics{}
	for seed := uint64(1); seed <= 5; seed++ {
		cfg := Small()
		cfg.Seed = seed
		sc := Generate(cfg)
		res, err := Quality(sc)
		if err != nil {
			t.Fatal(err)
		}
		topo := res[0]
		for _, r := range res {
			rows = append(rows, Row{fmt.Sprintf("seed %d %s", seed, r.Name), r.Metrics})
			byRun[r.Name] = append(byRun[r.Name], r.Metrics)
			if r.Name != topo.Name && r.Metrics.F1 >= topo.Metrics.F1 {
				t.Errorf("seed %d: baseline %s has F1 %.3f, not below the topology correlator's %.3f",
					seed, r.Name, r.Metrics.F1, topo.Metrics.F1)
			}
		}
		noise := 0
		for _, p := range Diagnose(topo.Incidents, sc) {
			if p.Root == "" && !slices.ContainsFunc(p.MergedWith, isFault) {
				noise++ // noise or flapping grouped with each other only
				continue
			}
			t.Logf("seed %d %s: %s", seed, topo.Name, p)
		}
		if noise > 0 {
			t.Logf("seed %d %s: %d noise or flapping alerts share an incident with other noise", seed, topo.Name, noise)
		}
	}
	for _, gr := range Groupings {
		rows = append(rows, Row{"median " + gr.Name, Median(byRun[gr.Name])})
	}
	t.Logf("Small(), seeds 1-5:\n%s", Table(rows))
	med := Median(byRun[Groupings[0].Name])
	if med.F1 < 0.95 {
		t.Errorf("topology correlator: median F1 %.3f, want at least 0.95", med.F1)
	}
	if med.RootCauseHitRate < 0.90 {
		t.Errorf("topology correlator: median root-cause hit rate %.3f, want at least 0.90", med.RootCauseHitRate)
	}
}

// TestQualityHard reports the figures when roots alert late (30%) or not
// at all (15%): merges repair the first; nothing can name a silent root,
// and its dependents may stay apart. Reported, not held to the targets.
func TestQualityHard(t *testing.T) {
	var rows []Row
	var topo []Metrics
	for seed := uint64(1); seed <= 5; seed++ {
		cfg := Hard()
		cfg.Seed = seed
		res, err := Quality(Generate(cfg))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			rows = append(rows, Row{fmt.Sprintf("seed %d %s", seed, r.Name), r.Metrics})
		}
		topo = append(topo, res[0].Metrics)
		for _, r := range res[1:] {
			if r.Metrics.F1 >= res[0].Metrics.F1 {
				t.Errorf("seed %d: baseline %s has F1 %.3f, not below the topology correlator's %.3f", seed, r.Name, r.Metrics.F1, res[0].Metrics.F1)
			}
		}
	}
	rows = append(rows, Row{"median topology", Median(topo)})
	t.Logf("Hard(), seeds 1-5:\n%s", Table(rows))
}

// TestQualityLarge reports the same figures for Large() (10k CIs, 600
// faults, up to 30 at once); it holds the correlator above the baselines.
func TestQualityLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30k-event scenario")
	}
	sc := large()
	res, err := Quality(sc)
	if err != nil {
		t.Fatal(err)
	}
	var rows []Row
	for _, r := range res {
		rows = append(rows, Row{r.Name, r.Metrics})
		if r.Name != res[0].Name && r.Metrics.F1 >= res[0].Metrics.F1 {
			t.Errorf("baseline %s has F1 %.3f, not below the topology correlator's %.3f", r.Name, r.Metrics.F1, res[0].Metrics.F1)
		}
	}
	t.Logf("Large():\n%s", Table(rows))
	for _, p := range Diagnose(res[0].Incidents, sc) {
		if p.Root != "" {
			t.Logf("%s: %s", res[0].Name, p)
		}
	}
}
