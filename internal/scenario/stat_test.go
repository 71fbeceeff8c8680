package scenario

import (
	"fmt"
	"testing"
)

func TestStat(t *testing.T) {
	cfg := Small()
	for seed := uint64(1); seed <= 5; seed++ {
		cfg.Seed = seed
		sc := Generate(cfg)
		res, err := Quality(sc)
		if err != nil {
			t.Fatal(err)
		}
		var rows []Row
		for _, r := range res {
			rows = append(rows, Row{fmt.Sprintf("seed %d %s", seed, r.Name), r.Metrics})
		}
		t.Logf("\n%s", Table(rows))
		for _, p := range Diagnose(res[0].Incidents, sc) {
			t.Logf("  %s", p)
		}
	}
}
