package scenario

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
)

// smallSeeds are the scenarios most tests look at.
func smallSeeds(t *testing.T) []*Scenario {
	t.Helper()
	var out []*Scenario
	for seed := uint64(1); seed <= 5; seed++ {
		cfg := Small()
		cfg.Seed = seed
		out = append(out, Generate(cfg))
	}
	return out
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, b := Generate(Small()), Generate(Small())
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two scenarios of the same config differ")
	}
	cfg := Small()
	cfg.Seed = 2
	if c := Generate(cfg); reflect.DeepEqual(a.Events, c.Events) {
		t.Fatal("seeds 1 and 2 made the same events")
	}
}

func TestGenerateSizes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		cis  int
	}{
		{"small", Small(), 200},
		{"large", Large(), 10000},
		{"zero config", Config{Seed: 3, Faults: 5}, 200},
		{"explicit counts", Config{Seed: 3, CoreSwitches: 1, AccessSwitches: 2, Hosts: 5, Databases: 1, Services: 3, Faults: 3}, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sc *Scenario
			if reflect.DeepEqual(tc.cfg, Large()) {
				sc = large() // shared with the benchmarks and TestQualityLarge
			} else {
				sc = Generate(tc.cfg)
			}
			if len(sc.CMDB.CIs) != tc.cis {
				t.Errorf("%d CIs, want %d", len(sc.CMDB.CIs), tc.cis)
			}
			if _, err := correlate.NewTopology(sc.CMDB); err != nil {
				t.Fatalf("invalid CMDB: %v", err)
			}
			if len(sc.Roots) != tc.cfg.Faults {
				t.Errorf("%d faults, want %d", len(sc.Roots), tc.cfg.Faults)
			}
			if len(sc.Events) == 0 {
				t.Fatal("no events")
			}
		})
	}
	sc := Generate(Small())
	if n := len(sc.Events); n < 1000 || n > 2000 {
		t.Errorf("Small has %d events, want 1–2k", n)
	}
	var noise, flaps int
	for _, g := range sc.Groups() {
		switch {
		case strings.HasPrefix(g, "noise-"):
			noise++
		case strings.HasPrefix(g, "flap-"):
			flaps++
		}
	}
	if noise != Small().Noise || flaps != Small().Flapping {
		t.Errorf("%d noise and %d flapping groups, want %d and %d", noise, flaps, Small().Noise, Small().Flapping)
	}
}

// TestEventsBindToTheirCI: every alert names its CI in a way the CMDB
// binding resolves (by id, name or alias, in all the label conventions),
// except noise that names no CI at all.
func TestEventsBindToTheirCI(t *testing.T) {
	for _, sc := range smallSeeds(t) {
		topo, err := correlate.NewTopology(sc.CMDB)
		if err != nil {
			t.Fatal(err)
		}
		via := map[string]int{}
		for _, ev := range sc.Events {
			b := topo.Bind(ev.Labels, correlate.DefaultCILabels)
			want, ok := sc.AlertCI[ev.Fingerprint]
			switch {
			case !ok && b != nil:
				t.Fatalf("alert %v names no CI in the truth but binds to %s", ev.Labels, b.CI)
			case !ok && !strings.HasPrefix(sc.Truth[ev.Fingerprint], "noise-"):
				t.Fatalf("alert %v of %s has no CI", ev.Labels, sc.Truth[ev.Fingerprint])
			case ok && b == nil:
				t.Fatalf("alert %v does not bind (want %s)", ev.Labels, want)
			case ok && b.CI != want:
				t.Fatalf("alert %v binds to %s, want %s", ev.Labels, b.CI, want)
			}
			if b != nil {
				via[b.Label+"/"+b.Via]++
			}
		}
		for _, k := range []string{"ci/id", "instance/alias", "hostname/alias", "device/name", "service/name", "job/name"} {
			if via[k] == 0 {
				t.Errorf("no alert binds by %s: %v", k, via)
			}
		}
	}
}

func TestEventsAreAlertmanagerNotifications(t *testing.T) {
	for _, sc := range smallSeeds(t) {
		if !slices.IsSortedFunc(sc.Events, func(a, b triage.Event) int { return a.Time.Compare(b.Time) }) {
			t.Fatal("events are not sorted by time")
		}
		firings := map[string]int{}
		resolved := map[string]int{}
		repeats := 0
		for i, ev := range sc.Events {
			if ev.Source != "alertmanager" || ev.Fingerprint != triage.Fingerprint(ev.Labels) {
				t.Fatalf("event %d: source %q, fingerprint %q of labels %v", i, ev.Source, ev.Fingerprint, ev.Labels)
			}
			if _, ok := sc.Truth[ev.Fingerprint]; !ok {
				t.Fatalf("event %d: alert %v is not in the truth", i, ev.Labels)
			}
			for _, l := range []string{"alertname", "severity"} {
				if ev.Labels[l] == "" {
					t.Fatalf("event %d: no %s label: %v", i, l, ev.Labels)
				}
			}
			cp := ev
			if err := cp.Normalize(ev.Time); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			switch ev.Status {
			case triage.AlertFiring:
				if !ev.EndsAt.IsZero() || ev.Time.Before(ev.StartsAt) {
					t.Fatalf("event %d: firing with ends_at %v, starts %v, sent %v", i, ev.EndsAt, ev.StartsAt, ev.Time)
				}
				if firings[ev.Fingerprint] > resolved[ev.Fingerprint] {
					repeats++
				}
				firings[ev.Fingerprint]++
			case triage.AlertResolved:
				if ev.EndsAt.IsZero() || ev.Time.Before(ev.EndsAt) || !ev.EndsAt.After(ev.StartsAt) {
					t.Fatalf("event %d: resolved with starts %v, ends %v, sent %v", i, ev.StartsAt, ev.EndsAt, ev.Time)
				}
				if firings[ev.Fingerprint] == 0 {
					t.Fatalf("event %d: resolved before it fired", i)
				}
				resolved[ev.Fingerprint]++
			default:
				t.Fatalf("event %d: status %q", i, ev.Status)
			}
		}
		for fp, g := range sc.Truth {
			if firings[fp] == 0 || resolved[fp] == 0 {
				t.Errorf("alert %s of %s: %d firing and %d resolved notifications", fp, g, firings[fp], resolved[fp])
			}
		}
		if repeats < len(sc.Events)/3 {
			t.Errorf("%d repeated firing notifications of %d events: want duplicates", repeats, len(sc.Events))
		}
		flapping := 0
		for fp, g := range sc.Truth {
			if strings.HasPrefix(g, "flap-") && resolved[fp] >= 3 {
				flapping++
			}
		}
		if flapping != Small().Flapping {
			t.Errorf("%d alerts resolved 3 times or more, want the %d flapping ones", flapping, Small().Flapping)
		}
	}
}

// groupSpan is when a ground-truth group's alerts are notified, and the CIs
// they are about.
type groupSpan struct {
	from, to time.Time
	cis      []string
}

func groupSpans(sc *Scenario) map[string]*groupSpan {
	out := map[string]*groupSpan{}
	for _, ev := range sc.Events {
		g := sc.Truth[ev.Fingerprint]
		s := out[g]
		if s == nil {
			s = &groupSpan{from: ev.Time, to: ev.Time}
			out[g] = s
		}
		s.to = ev.Time
		if ci, ok := sc.AlertCI[ev.Fingerprint]; ok && !slices.Contains(s.cis, ci) {
			s.cis = append(s.cis, ci)
		}
	}
	return out
}

// within lists the CIs reachable from ci in at most hops steps along adj.
func within(adj map[string][]string, ci string, hops int) map[string]bool {
	seen := map[string]bool{ci: true}
	frontier := []string{ci}
	for range hops {
		var next []string
		for _, c := range frontier {
			for _, d := range adj[c] {
				if !seen[d] {
					seen[d] = true
					next = append(next, d)
				}
			}
		}
		frontier = next
	}
	return seen
}

// TestConcurrentGroupsAreApart: groups whose alerts overlap in time have
// disjoint sets of CIs, and no CI of one is within three hops, up or down
// the relations, of a CI of the other: the truth is unambiguous.
func TestConcurrentGroupsAreApart(t *testing.T) {
	for i, sc := range smallSeeds(t) {
		up, down := map[string][]string{}, map[string][]string{}
		for _, r := range sc.CMDB.Relations {
			up[r.From] = append(up[r.From], r.To)
			down[r.To] = append(down[r.To], r.From)
		}
		spans := groupSpans(sc)
		groups := sc.Groups()
		near := map[string]map[string]bool{}
		for _, g := range groups {
			near[g] = map[string]bool{}
			for _, ci := range spans[g].cis {
				for c := range within(up, ci, 3) {
					near[g][c] = true
				}
				for c := range within(down, ci, 3) {
					near[g][c] = true
				}
			}
		}
		concurrent := 0
		for x, a := range groups {
			for _, b := range groups[x+1:] {
				sa, sb := spans[a], spans[b]
				if !sa.from.Before(sb.to) || !sb.from.Before(sa.to) {
					continue
				}
				if strings.HasPrefix(a, "fault-") && strings.HasPrefix(b, "fault-") {
					concurrent++
				}
				for _, ci := range sb.cis {
					if near[a][ci] {
						t.Errorf("seed %d: %s and %s overlap in time and %s of %s is within 3 hops of %s (%v)",
							i+1, a, b, ci, b, a, sa.cis)
					}
				}
			}
		}
		// At most Concurrent faults are notified at once, and that many are.
		type edge struct {
			at time.Time
			d  int
		}
		var edges []edge
		for g := range sc.Roots {
			edges = append(edges, edge{spans[g].from, 1}, edge{spans[g].to, -1})
		}
		slices.SortFunc(edges, func(a, b edge) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return a.d - b.d // an end before a start at the same time
		})
		active, most := 0, 0
		for _, e := range edges {
			active += e.d
			most = max(most, active)
		}
		if most != Small().Concurrent {
			t.Errorf("seed %d: at most %d faults at once, want %d", i+1, most, Small().Concurrent)
		}
		if concurrent < len(sc.Roots)/2 {
			t.Errorf("seed %d: %d pairs of faults overlap in time; want concurrent faults", i+1, concurrent)
		}
	}
}

// TestFaultsCascade: faults start at their root and reach its dependents;
// about one in ten roots alerts after its first dependent.
func TestFaultsCascade(t *testing.T) {
	late, cascades, faults := 0, 0, 0
	for _, sc := range smallSeeds(t) {
		first := map[string]time.Time{} // fingerprint → first notification
		for _, ev := range sc.Events {
			if _, ok := first[ev.Fingerprint]; !ok {
				first[ev.Fingerprint] = ev.StartsAt
			}
		}
		cis := map[string][]string{}
		rootStart := map[string]time.Time{}
		otherStart := map[string]time.Time{}
		for fp, g := range sc.Truth {
			root, ok := sc.Roots[g]
			if !ok {
				continue
			}
			ci := sc.AlertCI[fp]
			if !slices.Contains(cis[g], ci) {
				cis[g] = append(cis[g], ci)
			}
			m := otherStart
			if ci == root {
				m = rootStart
			}
			if s, ok := m[g]; !ok || first[fp].Before(s) {
				m[g] = first[fp]
			}
		}
		for g, root := range sc.Roots {
			faults++
			if _, ok := rootStart[g]; !ok {
				t.Errorf("%s: no alert on its root %s", g, root)
				continue
			}
			if len(cis[g]) > 1 {
				cascades++
				if otherStart[g].Before(rootStart[g]) {
					late++
				}
			}
		}
	}
	if cascades < faults/2 {
		t.Errorf("%d of %d faults reach a dependent", cascades, faults)
	}
	if late == 0 || late > cascades/4 {
		t.Errorf("%d of %d cascades have the root alert late, want about 10%%", late, cascades)
	}
}

func TestConfigCounts(t *testing.T) {
	c := Config{CIs: 10000}.counts()
	total := 0
	for _, n := range c {
		total += n
	}
	if total != 10000 || c[kindHost] < 4000 || c[kindService] < 3000 || c[kindCore] < 2 {
		t.Errorf("counts of 10k CIs: %v", c)
	}
	c = Config{CIs: 200, Hosts: 10}.counts()
	if c[kindHost] != 10 {
		t.Errorf("explicit host count not kept: %v", c)
	}
}
