package scenario

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/triage-dev/triage"
)

// kind is the role of a generated CI.
type kind uint8

const (
	kindCore kind = iota
	kindAccess
	kindHost
	kindDB
	kindCache
	kindQueue
	kindService
	numKinds
)

// ciType is the CMDB type of each kind.
var ciType = [numKinds]string{"network_switch", "network_switch", "host", "database", "cache", "queue", "service"}

// rootWeight is how often a fault starts at a CI of each kind: mostly where
// something depends on the root, so that most faults cascade.
var rootWeight = [numKinds]int{1, 4, 22, 25, 15, 12, 15}

// words name services and the databases, caches and queues they own.
var words = []string{
	"orders", "payments", "users", "catalog", "cart", "search", "billing", "inventory",
	"shipping", "auth", "checkout", "pricing", "reviews", "notifications", "accounts", "ledger",
	"fraud", "recommendations", "media", "profiles", "gateway", "reports", "loyalty", "returns",
	"tax", "quotes", "booking", "messaging", "analytics", "audit", "sessions", "feeds",
	"ads", "coupons", "wishlist", "invoices", "subscriptions", "delivery", "support", "identity",
}

// word is the i-th distinct name: orders, payments, …, orders-2, payments-2, …
func word(i int) string {
	if i < len(words) {
		return words[i]
	}
	return words[i%len(words)] + "-" + strconv.Itoa(i/len(words)+1)
}

// counts are the number of CIs of each kind.
type counts [numKinds]int

func (c Config) counts() counts {
	n := c.CIs
	explicit := counts{c.CoreSwitches, c.AccessSwitches, c.Hosts, c.Databases, c.Caches, c.Queues, c.Services}
	if n <= 0 {
		sum := 0
		for _, v := range explicit {
			sum += v
		}
		if sum > 0 {
			return explicit
		}
		n = 200
	}
	var d counts
	d[kindCore] = max(2, n/500)
	d[kindAccess] = max(2*d[kindCore], n/25)
	rest := max(0, n-d[kindCore]-d[kindAccess])
	d[kindHost] = rest * 45 / 100
	d[kindDB] = rest * 8 / 100
	d[kindCache] = rest * 6 / 100
	d[kindQueue] = rest * 4 / 100
	d[kindService] = rest - d[kindHost] - d[kindDB] - d[kindCache] - d[kindQueue]
	for k, v := range explicit {
		if v > 0 {
			d[k] = v
		}
	}
	return d
}

// graph is the generated topology with the indexes the generator needs.
type graph struct {
	cis    []triage.CI
	kinds  []kind
	dc     []string  // data centre of each CI, for the cluster label
	up     [][]int32 // up[i]: what CI i depends on (failures flow from there to i)
	down   [][]int32 // down[i]: what depends on CI i
	rels   []triage.Relation
	byKind [numKinds][]int32
}

func (g *graph) add(k kind, ci triage.CI, dc string) int32 {
	i := int32(len(g.cis))
	ci.Type = ciType[k]
	if ci.Attributes == nil {
		ci.Attributes = map[string]string{}
	}
	ci.Attributes["dc"] = dc
	g.cis = append(g.cis, ci)
	g.kinds = append(g.kinds, k)
	g.dc = append(g.dc, dc)
	g.up = append(g.up, nil)
	g.down = append(g.down, nil)
	g.byKind[k] = append(g.byKind[k], i)
	return i
}

func (g *graph) relate(from, to int32, typ string) {
	g.rels = append(g.rels, triage.Relation{From: g.cis[from].ID, To: g.cis[to].ID, Type: typ})
	g.up[from] = append(g.up[from], to)
	g.down[to] = append(g.down[to], from)
}

// hostIP is the management address of host n (1-based), unique up to 16M hosts.
func hostIP(n int) string {
	return fmt.Sprintf("10.%d.%d.%d", n/62500, n/250%250, n%250+1)
}

// buildGraph makes the topology: core switches; access switches
// connected_to a core switch; hosts connected_to an access switch;
// databases, caches, queues and services runs_on a host; services
// depends_on databases, caches, queues and sometimes an earlier service (so
// depends_on has no cycle).
func buildGraph(r *rand.Rand, c counts) *graph {
	g := &graph{}
	pick := func(k kind, i int) int32 { // the i-th CI of kind k first, then random ones
		list := g.byKind[k]
		if i < len(list) {
			return list[i]
		}
		return list[r.IntN(len(list))]
	}
	for i := range c[kindCore] {
		dc := "dc" + strconv.Itoa(i%2+1)
		n := i + 1
		g.add(kindCore, triage.CI{
			ID:         fmt.Sprintf("sw-core-%d", n),
			Name:       fmt.Sprintf("%s-core-%02d", dc, n),
			Aliases:    []string{fmt.Sprintf("10.255.0.%d", n)},
			Attributes: map[string]string{"role": "core"},
		}, dc)
	}
	for i := range c[kindAccess] {
		if c[kindCore] == 0 {
			break
		}
		core := pick(kindCore, i)
		dc := g.dc[core]
		n := i + 1
		sw := g.add(kindAccess, triage.CI{
			ID:         fmt.Sprintf("sw-acc-%d", n),
			Name:       fmt.Sprintf("%s-acc-%03d", dc, n),
			Aliases:    []string{fmt.Sprintf("10.255.%d.%d", 1+n/250, n%250+1)},
			Attributes: map[string]string{"role": "access"},
		}, dc)
		g.relate(sw, core, triage.RelConnectedTo)
	}
	for i := range c[kindHost] {
		dc := "dc1"
		var acc int32 = -1
		if len(g.byKind[kindAccess]) > 0 {
			acc = pick(kindAccess, i)
			dc = g.dc[acc]
		}
		n := i + 1
		id := fmt.Sprintf("host-%d", n)
		h := g.add(kindHost, triage.CI{
			ID:      id,
			Name:    id,
			Aliases: []string{hostIP(n), id + "." + dc + ".example.com"},
		}, dc)
		if acc >= 0 {
			g.relate(h, acc, triage.RelConnectedTo)
		}
	}
	hosted := func(k kind, id, name, alias string) int32 {
		dc := "dc1"
		var host int32 = -1
		if len(g.byKind[kindHost]) > 0 {
			host = g.byKind[kindHost][r.IntN(len(g.byKind[kindHost]))]
			dc = g.dc[host]
		}
		ci := triage.CI{ID: id, Name: name}
		if alias != "" {
			ci.Aliases = []string{alias}
		}
		if k == kindService {
			ci.Service = name
		}
		i := g.add(k, ci, dc)
		if host >= 0 {
			g.relate(i, host, triage.RelRunsOn)
		}
		return i
	}
	for i := range c[kindDB] {
		w := word(i)
		hosted(kindDB, "db-"+w, w+"-db", w+"-db.prod.example.com")
	}
	for i := range c[kindCache] {
		w := word(i)
		hosted(kindCache, "cache-"+w, w+"-redis", w+"-redis.prod.example.com")
	}
	for i := range c[kindQueue] {
		w := word(i)
		hosted(kindQueue, "queue-"+w, w+"-kafka", w+"-kafka.prod.example.com")
	}
	for i := range c[kindService] {
		w := word(i)
		s := hosted(kindService, "svc-"+w, w, "")
		dep := func(k kind, own, other float64) {
			list := g.byKind[k]
			switch {
			case i < len(list) && r.Float64() < own:
				g.relate(s, list[i], triage.RelDependsOn)
			case len(list) > 0 && r.Float64() < other:
				g.relate(s, list[r.IntN(len(list))], triage.RelDependsOn)
			}
		}
		dep(kindDB, 0.85, 0.4)
		dep(kindCache, 0.6, 0.2)
		dep(kindQueue, 0.5, 0.2)
		if i > 0 && r.Float64() < 0.3 {
			svcs := g.byKind[kindService]
			g.relate(s, svcs[r.IntN(len(svcs)-1)], triage.RelDependsOn) // an earlier service
		}
	}
	return g
}

// walker finds the CIs within some hops of others without allocating per
// walk. Each walk is breadth-first, so a CI is first reached by its
// shortest path; out collects the union of the walks since reset.
type walker struct {
	inOut, seen []uint32 // stamps: in out since reset; reached in this walk
	set, cur    uint32
	queue       []hop
	out         []int32
}

type hop struct {
	ci   int32
	left int8
}

func newWalker(n int) *walker {
	return &walker{inOut: make([]uint32, n), seen: make([]uint32, n)}
}

// reset empties out.
func (w *walker) reset() {
	w.set++
	w.out = w.out[:0]
}

// walk adds to out every CI within hops of from along adj (one direction).
func (w *walker) walk(adj [][]int32, from int32, hops int8) {
	w.cur++
	w.seen[from] = w.cur
	w.queue = append(w.queue[:0], hop{from, hops})
	for i := 0; i < len(w.queue); i++ {
		h := w.queue[i]
		if w.inOut[h.ci] != w.set {
			w.inOut[h.ci] = w.set
			w.out = append(w.out, h.ci)
		}
		if h.left == 0 {
			continue
		}
		for _, d := range adj[h.ci] {
			if w.seen[d] != w.cur {
				w.seen[d] = w.cur
				w.queue = append(w.queue, hop{d, h.left - 1})
			}
		}
	}
}

// footprint lists the CIs a failure of root may reach: root and every CI
// depending on it through at most hops relations, in breadth-first order.
func (g *graph) footprint(w *walker, root int32, hops int8) []int32 {
	w.reset()
	w.walk(g.down, root, hops)
	return append([]int32(nil), w.out...)
}

// zone lists every CI within hops relations of a CI of foot, going only up
// or only down from it: the CIs whose failure could explain, or be explained
// by, a failure in foot.
func (g *graph) zone(w *walker, foot []int32, hops int8) []int32 {
	w.reset()
	for _, c := range foot {
		w.walk(g.up, c, hops)
		w.walk(g.down, c, hops)
	}
	return w.out
}
