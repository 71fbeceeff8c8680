package correlate

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/triage-dev/triage"
)

// CorrelatorOptions configure the Correlator.
type CorrelatorOptions struct {
	// Window is how long after an incident's last notification a new
	// alert may still join it.
	Window time.Duration
	// MaxHops is how far apart in the topology two CIs may be for their
	// alerts to share an incident; 0 joins alerts of the same CI only.
	MaxHops int
	// Relations are the relation types failures travel along; nil means
	// depends_on, runs_on and connected_to.
	Relations []string
	// GroupBy are the labels that group alerts no CI, rule or topology
	// placed.
	GroupBy []string
	// MaxAge stops an incident from absorbing new alerts once it has been
	// open this long (0: no limit), so a long outage does not swallow
	// unrelated later failures.
	MaxAge time.Duration
	// Rules supply correlate and group rules; nil for none.
	Rules Rules
	// MaxRuleScan bounds how many open incidents, newest first, correlate
	// rules are tried against for one new alert (default 1000): all open
	// ones when a rule has no equality key, else only those sharing the
	// alert's values of the key labels.
	MaxRuleScan int
}

// DefaultRelations are the relation types that carry failures by default.
var DefaultRelations = []string{triage.RelDependsOn, triage.RelRunsOn, triage.RelConnectedTo}

// Correlator is the Grouper Triage runs: an alert joins an open incident
// when a correlate rule links them, else when its CI is within MaxHops of
// one of the incident's CIs along the failure-carrying relations (in one
// direction: one depends on the other, transitively), else by group rules,
// else by the group_by labels. When an alert's CI is what several open
// incidents depend on, those incidents are merged into the oldest: they
// turned out to have one cause.
//
// Its index is rebuilt from the live incidents on restore, so it holds
// nothing the store does not.
type Correlator struct {
	opts    CorrelatorOptions
	topo    *Topology
	relMask uint8
	upCache map[int32][]hop
	incs    map[uint64]*cInc
	order   []uint64                     // not-resolved incidents, ascending
	byCI    map[int32][]uint64           // CI → incidents with an alert on it
	byUp    map[int32]map[uint64][]upRef // CI u → incident → its CIs that depend on u
	groups  map[string][]uint64          // group key → incidents, ascending
	// texts are the key and join reason of each group in groups, shared by
	// every alert that joins by it: per-alert copies were a tenth of the
	// memory an alert costs.
	texts map[string]*groupText

	// Correlate rules: none, or each with an equality key (indexed), or
	// scanned against the newest open incidents.
	noCorrelate bool
	ruleKeys    [][]int                        // indexed: per rule, its key labels (indexes in keyLabels)
	keyLabels   []string                       // indexed: the distinct key labels
	byKey       map[string]map[string][]uint64 // label → common value → incidents, ascending
}

// groupText is a group's key and the reason alerts join by it.
type groupText struct {
	key, reason string
}

// hop is one CI upstream of another: what it depends on within MaxHops.
type hop struct {
	ci     int32
	dist   uint8
	rel    uint8
	parent int32 // index in the same hop list of the previous step, -1 from the origin
}

type upRef struct {
	ci   int32 // the incident's CI that depends on the key CI
	dist uint8
}

type cInc struct {
	id     uint64
	opened time.Time
	last   time.Time
	cis    []int32
	pos    map[int32]int // CI → its index in cis
	starts []time.Time   // when the CI's first alert was seen
	score  []int         // how many other CIs of the incident depend on cis[i]
	best   int           // index of the root cause in cis: kept as scores rise, never rescanned
	keys   []string
	// keyVals are the incident's common values of the key labels ("" when
	// not common); nil until its first alert joined.
	keyVals []string
}

// NewCorrelator returns a Correlator over topo (nil: no CMDB).
func NewCorrelator(topo *Topology, opts CorrelatorOptions) *Correlator {
	if opts.Relations == nil {
		opts.Relations = DefaultRelations
	}
	if opts.MaxRuleScan <= 0 {
		opts.MaxRuleScan = 1000
	}
	c := &Correlator{
		opts:    opts,
		topo:    topo,
		upCache: make(map[int32][]hop),
		incs:    make(map[uint64]*cInc),
		byCI:    make(map[int32][]uint64),
		byUp:    make(map[int32]map[uint64][]upRef),
		groups:  make(map[string][]uint64),
		texts:   make(map[string]*groupText),
	}
	for _, r := range opts.Relations {
		if i := relIndex(r); i >= 0 {
			c.relMask |= 1 << i
		}
	}
	if opts.Rules == nil {
		c.noCorrelate = true
		return c
	}
	keys := opts.Rules.CorrelateKeys()
	c.noCorrelate = len(keys) == 0
	if len(keys) == 0 || slices.ContainsFunc(keys, func(k []string) bool { return len(k) == 0 }) {
		return c // none, or one that must be scanned
	}
	for _, rk := range keys {
		var idx []int
		for _, k := range rk {
			i := slices.Index(c.keyLabels, k)
			if i < 0 {
				i = len(c.keyLabels)
				c.keyLabels = append(c.keyLabels, k)
			}
			idx = append(idx, i)
		}
		c.ruleKeys = append(c.ruleKeys, idx)
	}
	c.byKey = make(map[string]map[string][]uint64)
	return c
}

// up lists the CIs that CI i depends on within MaxHops, nearest first.
func (c *Correlator) up(i int32) []hop {
	if h, ok := c.upCache[i]; ok {
		return h
	}
	var hops []hop
	if c.opts.MaxHops > 0 {
		seen := map[int32]bool{i: true}
		frontier := []int32{-1}
		for d := 1; d <= c.opts.MaxHops && len(frontier) > 0; d++ {
			var next []int32
			for _, p := range frontier {
				from := i
				if p >= 0 {
					from = hops[p].ci
				}
				for _, e := range c.topo.up[from] {
					if c.relMask&(1<<e.rel) == 0 || seen[e.to] {
						continue
					}
					seen[e.to] = true
					hops = append(hops, hop{ci: e.to, dist: uint8(d), rel: e.rel, parent: p})
					next = append(next, int32(len(hops)-1))
				}
			}
			frontier = next
		}
	}
	c.upCache[i] = hops
	return hops
}

// path renders the chain from CI from up to hops[k], e.g.
// ["svc-orders", "depends_on", "db-orders", "runs_on", "host-7"].
func (c *Correlator) path(from int32, hops []hop, k int32) []string {
	var steps []int32
	for ; k >= 0; k = hops[k].parent {
		steps = append(steps, k)
	}
	out := []string{c.topo.cis[from].ID}
	for i := len(steps) - 1; i >= 0; i-- {
		h := hops[steps[i]]
		out = append(out, relTypes[h.rel], c.topo.cis[h.ci].ID)
	}
	return out
}

// usable reports whether an incident may still take a new alert at now.
func (c *Correlator) usable(ci *cInc, now time.Time) bool {
	if now.Sub(ci.last) > c.opts.Window {
		return false
	}
	return c.opts.MaxAge <= 0 || now.Sub(ci.opened) <= c.opts.MaxAge
}

func (c *Correlator) bound(a *triage.Alert) (int32, *triage.CI, bool) {
	if c.topo == nil || a.Binding == nil {
		return 0, nil, false
	}
	i, ok := c.topo.index(a.Binding.CI)
	if !ok {
		return 0, nil, false
	}
	return i, &c.topo.cis[i], true
}

// candidate is an open incident a new alert is related to, at its nearest.
type candidate struct {
	id     uint64
	dist   uint8
	causal bool  // the alert's CI is what one of the incident's CIs depends on (or the same CI)
	near   bool  // the nearest relation is causal (it names the path direction)
	from   int32 // nearest path: from this CI up to ...
	hop    int32 // ... hops[hop] of from's upstream list (-1: the same CI)
}

// Assign implements Grouper.
func (c *Correlator) Assign(a *triage.Alert, now time.Time, open OpenIncidents) Assignment {
	idx, ci, isBound := c.bound(a)
	if !c.noCorrelate && open != nil {
		if as, ok := c.assignByRule(a, ci, now, open); ok {
			return as
		}
	}
	if isBound {
		if as, ok := c.assignTopology(idx, now); ok {
			return as
		}
	}
	if c.opts.Rules != nil {
		if gr, ok := c.opts.Rules.Group(a, ci); ok {
			w := gr.Window
			if w <= 0 {
				w = c.opts.Window
			}
			key := "rule " + gr.Name + " {" + groupKey(gr.By, a.Labels) + "}"
			if id, ok := c.newestInGroup(key, w, now); ok {
				return Assignment{IncidentID: id, GroupKey: key, Rule: gr.Name,
					Reason: fmt.Sprintf("group rule %s: same %s within %s", gr.Name, groupKey(gr.By, a.Labels), w)}
			}
			return Assignment{GroupKey: key, GroupLabels: pick(a.Labels, gr.By), Rule: gr.Name,
				Reason: fmt.Sprintf("first alert of group rule %s {%s}", gr.Name, groupKey(gr.By, a.Labels))}
		}
	}
	if isBound {
		return Assignment{Reason: fmt.Sprintf("first alert on %s: no open incident within %s", ci.ID, hopCount(c.opts.MaxHops))}
	}
	key := groupKey(c.opts.GroupBy, a.Labels)
	if id, ok := c.newestInGroup(key, c.opts.Window, now); ok {
		t := c.texts[key]
		if t == nil {
			t = &groupText{key: key, reason: "same group key {" + key + "} within " + c.opts.Window.String() + " of the group's last notification"}
			c.texts[key] = t
		}
		return Assignment{IncidentID: id, GroupKey: t.key, Reason: t.reason}
	}
	return Assignment{GroupKey: key, GroupLabels: pick(a.Labels, c.opts.GroupBy), Reason: "first alert of group {" + key + "}"}
}

// assignByRule tries correlate rules against the open incidents, newest
// first, at most MaxRuleScan of them.
func (c *Correlator) assignByRule(a *triage.Alert, ci *triage.CI, now time.Time, open OpenIncidents) (Assignment, bool) {
	ids := c.order
	if c.byKey != nil {
		// A rule can only match incidents sharing the alert's value of each
		// of its keys: take its shortest list; all rules' lists together.
		ids = nil
		for _, rk := range c.ruleKeys {
			var best []uint64
			for n, k := range rk {
				l := c.keyLabels[k]
				if list := c.byKey[l][a.Labels[l]]; n == 0 || len(list) < len(best) {
					best = list
				}
			}
			ids = append(ids, best...)
		}
		if len(c.ruleKeys) > 1 {
			slices.Sort(ids)
			ids = slices.Compact(ids)
		}
	}
	scanned := 0
	for i := len(ids) - 1; i >= 0 && scanned < c.opts.MaxRuleScan; i-- {
		ii := c.incs[ids[i]]
		if ii == nil || !c.usable(ii, now) {
			continue // one cheap check: the cap bounds rule evaluations
		}
		scanned++
		inc := open.Incident(ii.id)
		if inc == nil {
			continue
		}
		if rule, ok := c.opts.Rules.Correlate(a, ci, inc); ok {
			return Assignment{IncidentID: ii.id, Rule: rule,
				Reason: fmt.Sprintf("correlate rule %s links it to %s", rule, inc.Key)}, true
		}
	}
	return Assignment{}, false
}

// indexKeys keeps the incident's common values of the key labels, and the
// index of them, as alerts join.
func (c *Correlator) indexKeys(ii *cInc, labels map[string]string) {
	if c.byKey == nil {
		return
	}
	if ii.keyVals == nil {
		ii.keyVals = make([]string, len(c.keyLabels))
		for i, l := range c.keyLabels {
			ii.keyVals[i] = labels[l]
			c.keyAdd(l, ii.keyVals[i], ii.id)
		}
		return
	}
	for i, l := range c.keyLabels {
		if v := ii.keyVals[i]; v != "" && labels[l] != v {
			c.keyDel(l, v, ii.id)
			ii.keyVals[i] = ""
			c.keyAdd(l, "", ii.id)
		}
	}
}

func (c *Correlator) keyAdd(label, value string, id uint64) {
	m := c.byKey[label]
	if m == nil {
		m = make(map[string][]uint64)
		c.byKey[label] = m
	}
	ids := m[value]
	if i, found := slices.BinarySearch(ids, id); !found {
		m[value] = slices.Insert(ids, i, id)
	}
}

func (c *Correlator) keyDel(label, value string, id uint64) {
	m := c.byKey[label]
	ids := m[value]
	if i, found := slices.BinarySearch(ids, id); found {
		ids = slices.Delete(ids, i, i+1)
	}
	if len(ids) == 0 {
		delete(m, value)
	} else {
		m[value] = ids
	}
}

// assignTopology relates a bound alert to the open incidents near its CI.
// It joins the nearest; when its CI is what other incidents depend on, it
// links them into one cascade and they merge: every incident the alert's
// CI is upstream of, with the nearest incident upstream of it, become one,
// kept under the oldest id. Incidents it merely depends on (several
// independent upstream failures) are not merged.
func (c *Correlator) assignTopology(idx int32, now time.Time) (Assignment, bool) {
	var cands []candidate
	at := make(map[uint64]int)
	consider := func(id uint64, dist uint8, causal bool, from, hop int32) {
		ii := c.incs[id]
		if ii == nil || !c.usable(ii, now) {
			return
		}
		k, ok := at[id]
		if !ok {
			at[id] = len(cands)
			cands = append(cands, candidate{id: id, dist: dist, causal: causal, near: causal, from: from, hop: hop})
			return
		}
		cd := &cands[k]
		cd.causal = cd.causal || causal
		// The nearest relation names the path; among equals the lowest CI
		// index, so the choice does not depend on the order CIs joined.
		if dist < cd.dist || dist == cd.dist && from < cd.from {
			cd.dist, cd.near, cd.from, cd.hop = dist, causal, from, hop
		}
	}
	for _, id := range c.byCI[idx] {
		consider(id, 0, true, idx, -1)
	}
	// The incident's CI depends on this alert's CI: this alert may be the cause.
	for _, id := range slices.Sorted(maps.Keys(c.byUp[idx])) {
		for _, r := range c.byUp[idx][id] {
			hops := c.up(r.ci)
			for k := range hops {
				if hops[k].ci == idx {
					consider(id, r.dist, true, r.ci, int32(k))
					break
				}
			}
		}
	}
	// This alert's CI depends on the incident's CI: a symptom of it.
	hops := c.up(idx)
	for k := range hops {
		for _, id := range c.byCI[hops[k].ci] {
			consider(id, hops[k].dist, false, idx, int32(k))
		}
	}
	if len(cands) == 0 {
		return Assignment{}, false
	}
	nearest := func(keep func(candidate) bool) (candidate, bool) {
		var best candidate
		found := false
		for _, cd := range cands {
			if keep(cd) && (!found || cd.dist < best.dist || cd.dist == best.dist && cd.id < best.id) {
				best, found = cd, true
			}
		}
		return best, found
	}
	best, _ := nearest(func(candidate) bool { return true })
	group := []uint64{}
	for _, cd := range cands {
		if cd.causal {
			group = append(group, cd.id)
		}
	}
	if len(group) > 0 {
		if up, ok := nearest(func(cd candidate) bool { return !cd.causal }); ok {
			group = append(group, up.id)
		}
		slices.Sort(group)
		best = cands[at[group[0]]]
	}
	as := Assignment{IncidentID: best.id}
	if len(group) > 1 {
		as.Merge = group[1:]
	}
	self := c.topo.cis[idx].ID
	switch {
	case best.hop < 0:
		as.Path = []string{self}
		as.Reason = fmt.Sprintf("same CI %s as an alert of the incident", self)
	case best.near:
		as.Path = c.path(best.from, c.up(best.from), best.hop)
		as.Reason = fmt.Sprintf("the incident's CI %s depends on %s (%s)", as.Path[0], self, hopCount(int(best.dist)))
	default:
		as.Path = c.path(best.from, c.up(best.from), best.hop)
		as.Reason = fmt.Sprintf("%s depends on the incident's CI %s (%s)", self, as.Path[len(as.Path)-1], hopCount(int(best.dist)))
	}
	return as, true
}

// newestInGroup is the newest incident of a group that was notified (any
// alert of it, not only those of the group) within window. An incident's
// last notification is one value however its alerts joined, so the answer
// is the same live and after a restore.
func (c *Correlator) newestInGroup(key string, window time.Duration, now time.Time) (uint64, bool) {
	ids := c.groups[key]
	for i := len(ids) - 1; i >= 0; i-- {
		ii := c.incs[ids[i]]
		if ii != nil && now.Sub(ii.last) <= window && (c.opts.MaxAge <= 0 || now.Sub(ii.opened) <= c.opts.MaxAge) {
			return ids[i], true
		}
	}
	return 0, false
}

// Join implements Grouper.
func (c *Correlator) Join(id uint64, a *triage.Alert, now time.Time) {
	ii := c.incs[id]
	if ii == nil {
		ii = &cInc{id: id, opened: a.FirstSeen, last: now}
		c.incs[id] = ii
		i, _ := slices.BinarySearch(c.order, id)
		c.order = slices.Insert(c.order, i, id)
	}
	if a.FirstSeen.Before(ii.opened) {
		ii.opened = a.FirstSeen
	}
	c.indexKeys(ii, a.Labels)
	if now.After(ii.last) {
		ii.last = now
	}
	if idx, _, ok := c.bound(a); ok {
		c.addCI(ii, idx, a.FirstSeen)
	}
	if key := a.Joined.GroupKey; key != "" && !slices.Contains(ii.keys, key) {
		ii.keys = append(ii.keys, key)
		grps := c.groups[key]
		i, _ := slices.BinarySearch(grps, id)
		c.groups[key] = slices.Insert(grps, i, id)
	}
}

// addCI adds a CI to an incident and updates the root-cause scores in
// time proportional to the CI's upstream and downstream neighbours, not to
// the incident's size: scores only rise and starts only move earlier, so
// comparing each changed entry with the current best keeps the best.
func (c *Correlator) addCI(ii *cInc, idx int32, start time.Time) {
	if ii.pos == nil {
		ii.pos = make(map[int32]int)
	}
	if k, ok := ii.pos[idx]; ok {
		if start.Before(ii.starts[k]) {
			ii.starts[k] = start
			ii.promote(k)
		}
		return
	}
	// How many of the incident's CIs depend on the new one: its entries
	// in byUp registered by this incident.
	score := len(c.byUp[idx][ii.id])
	k := len(ii.cis)
	ii.pos[idx] = k
	ii.cis = append(ii.cis, idx)
	ii.starts = append(ii.starts, start)
	ii.score = append(ii.score, score)
	ii.promote(k)
	hops := c.up(idx)
	for _, h := range hops {
		if x, ok := ii.pos[h.ci]; ok {
			ii.score[x]++ // the new CI depends on h.ci
			ii.promote(x)
		}
	}
	c.byCI[idx] = append(c.byCI[idx], ii.id)
	for _, h := range hops {
		m := c.byUp[h.ci]
		if m == nil {
			m = make(map[uint64][]upRef)
			c.byUp[h.ci] = m
		}
		m[ii.id] = append(m[ii.id], upRef{ci: idx, dist: h.dist})
	}
}

// promote makes cis[k] the root cause if it now beats the current one:
// a higher score, the earliest first alert among equals, then the CI's
// place in the CMDB, so the choice does not depend on the order CIs joined
// (a restore joins them in another order than live).
func (ii *cInc) promote(k int) {
	b := ii.best
	if k == b {
		return
	}
	if ii.score[k] > ii.score[b] || ii.score[k] == ii.score[b] &&
		(ii.starts[k].Before(ii.starts[b]) || ii.starts[k].Equal(ii.starts[b]) && ii.cis[k] < ii.cis[b]) {
		ii.best = k
	}
}

// Touch implements Grouper.
func (c *Correlator) Touch(id uint64, now time.Time) {
	ii := c.incs[id]
	if ii == nil || !now.After(ii.last) {
		return
	}
	ii.last = now
}

// Release implements Grouper.
func (c *Correlator) Release(id uint64) {
	ii := c.incs[id]
	if ii == nil {
		return
	}
	delete(c.incs, id)
	for i, l := range c.keyLabels {
		if ii.keyVals != nil {
			c.keyDel(l, ii.keyVals[i], id)
		}
	}
	if i, ok := slices.BinarySearch(c.order, id); ok {
		c.order = slices.Delete(c.order, i, i+1)
	}
	// Each byUp entry is deleted once, however many of the incident's CIs
	// registered in it: releasing stays linear in the incident's size.
	ups := make(map[int32]struct{})
	for _, idx := range ii.cis {
		c.byCI[idx] = deleteID(c.byCI[idx], id)
		if len(c.byCI[idx]) == 0 {
			delete(c.byCI, idx)
		}
		for _, h := range c.up(idx) {
			ups[h.ci] = struct{}{}
		}
	}
	for u := range ups {
		delete(c.byUp[u], id)
		if len(c.byUp[u]) == 0 {
			delete(c.byUp, u)
		}
	}
	for _, key := range ii.keys {
		grps := deleteID(c.groups[key], id)
		if len(grps) == 0 {
			delete(c.groups, key)
			delete(c.texts, key)
		} else {
			c.groups[key] = grps
		}
	}
}

func deleteID(ids []uint64, id uint64) []uint64 {
	return slices.DeleteFunc(ids, func(x uint64) bool { return x == id })
}

// RootCause implements RootCauser: the incident's CI the most others depend
// on, the earliest to alert among equals.
func (c *Correlator) RootCause(id uint64) (triage.RootCause, bool) {
	ii := c.incs[id]
	if ii == nil || len(ii.cis) == 0 {
		return triage.RootCause{}, false
	}
	best := ii.best
	ci := c.topo.cis[ii.cis[best]]
	what := ci.ID
	if ci.Type != "" {
		what += " (" + ci.Type + ")"
	}
	switch {
	case len(ii.cis) == 1:
		return triage.RootCause{CI: ci.ID, Reason: what + " is the only affected CI"}, true
	case ii.score[best] == 0:
		return triage.RootCause{CI: ci.ID, Reason: fmt.Sprintf("%s alerted first; none of the %d affected CIs depends on another", what, len(ii.cis))}, true
	}
	return triage.RootCause{CI: ci.ID, Reason: fmt.Sprintf("%d of the %d other affected CIs depend on %s within %s",
		ii.score[best], len(ii.cis)-1, what, hopCount(c.opts.MaxHops))}, true
}

// RootCauser is implemented by Groupers that can name an incident's root cause.
type RootCauser interface {
	RootCause(incidentID uint64) (triage.RootCause, bool)
}

func hopCount(n int) string {
	if n == 1 {
		return "1 hop"
	}
	return fmt.Sprintf("%d hops", n)
}

func groupKey(by []string, labels map[string]string) string {
	var b strings.Builder
	for i, l := range by {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l)
		b.WriteString(`="`)
		b.WriteString(labels[l])
		b.WriteByte('"')
	}
	return b.String()
}

func pick(labels map[string]string, by []string) map[string]string {
	out := make(map[string]string, len(by))
	for _, l := range by {
		if v, ok := labels[l]; ok {
			out[l] = v
		}
	}
	return out
}
