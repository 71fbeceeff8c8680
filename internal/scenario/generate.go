package scenario

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
)

// Shape of a scenario's failures.
const (
	// maxHops is how far a failure propagates to dependents.
	maxHops = 3
	// propagate is the chance that a dependent of a failed CI fails too;
	// each dependent gets one chance, from the first failed CI reaching it.
	propagate = 0.7
	// lateRoot is the default chance that a fault's root alerts only after
	// its first dependent (Config.LateRoot).
	lateRoot = 0.1
	// spread bounds how long after a fault's start its last alert begins,
	// and how long after the fault's end its last alert resolves.
	spread = 10 * time.Minute
	// quiet is how long after a group ends nothing may happen near it, so
	// that its incident has resolved and left every correlation window.
	quiet = 20 * time.Minute
)

// Generate builds the scenario of cfg. The same cfg gives the same scenario,
// byte for byte. Zero fields default to: 200 CIs, one fault at a time, a
// five-hour span starting 2026-03-02 08:00 UTC.
//
// Each fault starts at a root CI that alerts first (in about 10% of faults
// it alerts 10–60 s after its first dependent instead). The failure reaches
// each CI that depends on a failed CI (depends_on, runs_on, connected_to,
// followed backwards) with probability 0.7 after 10–90 s, up to three hops
// from the root. Each failed CI raises one or two alerts, which Alertmanager
// notifies when they start, again every 1–5 minutes while they fire, and
// once resolved when the fault (5–40 minutes long) ends.
func Generate(cfg Config) *Scenario {
	cfg = cfg.withDefaults()
	r := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g := buildGraph(r, cfg.counts())
	s := &gen{
		cfg:  cfg,
		r:    r,
		g:    g,
		w:    newWalker(len(g.cis)),
		busy: make([][]span, len(g.cis)),
		used: make(map[string]bool),
		sc: &Scenario{
			CMDB:    correlate.CMDB{CIs: g.cis, Relations: g.rels},
			Truth:   make(map[string]string),
			Roots:   make(map[string]string),
			AlertCI: make(map[string]string),
		},
	}
	if len(g.cis) > 0 {
		s.faults()
		s.flaps()
	}
	s.noise()
	slices.SortStableFunc(s.sc.Events, func(a, b triage.Event) int { return a.Time.Compare(b.Time) })
	return s.sc
}

func (c Config) withDefaults() Config {
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	}
	c.Start = c.Start.UTC().Truncate(time.Second)
	if c.Duration <= 0 {
		c.Duration = 5 * time.Hour
	}
	if c.Concurrent <= 0 {
		c.Concurrent = 1
	}
	return c
}

type gen struct {
	cfg Config
	r   *rand.Rand
	g   *graph
	w   *walker
	// busy[i] lists when CI i is in the footprint of a group, quiet time
	// after it included.
	busy [][]span
	// faultSpans are when each fault's alerts may fire, for Concurrent.
	faultSpans []span
	used       map[string]bool // fingerprints handed out
	sc         *Scenario
}

type span struct{ from, to time.Time }

func (a span) overlaps(b span) bool { return a.from.Before(b.to) && b.from.Before(a.to) }

// dur is a random duration in [lo, hi], in whole seconds.
func (s *gen) dur(lo, hi time.Duration) time.Duration {
	n := int64((hi - lo) / time.Second)
	return lo + time.Duration(s.r.Int64N(n+1))*time.Second
}

// free reports whether no CI within maxHops (up or down) of foot is in the
// footprint of a group active during sp.
func (s *gen) free(foot []int32, sp span) bool {
	for _, c := range s.g.zone(s.w, foot, maxHops) {
		for _, b := range s.busy[c] {
			if b.overlaps(sp) {
				return false
			}
		}
	}
	return true
}

func (s *gen) occupy(foot []int32, sp span) {
	for _, c := range foot {
		s.busy[c] = append(s.busy[c], sp)
	}
}

// randomKind picks a kind of CI by weight among the kinds the topology has.
func (s *gen) randomKind(weight *[numKinds]int) kind {
	total := 0
	for k, w := range weight {
		if len(s.g.byKind[k]) > 0 {
			total += w
		}
	}
	if total == 0 {
		return s.g.kinds[s.r.IntN(len(s.g.cis))]
	}
	n := s.r.IntN(total)
	for k, w := range weight {
		if len(s.g.byKind[k]) == 0 {
			continue
		}
		if n < w {
			return kind(k)
		}
		n -= w
	}
	panic("unreachable")
}

// of picks a CI of kind k.
func (s *gen) of(k kind) int32 {
	list := s.g.byKind[k]
	return list[s.r.IntN(len(list))]
}

// faults places cfg.Faults faults at random starts over the duration, each
// delayed while Concurrent faults are active or while no root far enough
// from the active groups can be found.
func (s *gen) faults() {
	starts := make([]time.Time, s.cfg.Faults)
	for i := range starts {
		starts[i] = s.cfg.Start.Add(s.dur(0, s.cfg.Duration))
	}
	slices.SortFunc(starts, time.Time.Compare)
	var prev time.Time
	for i, t := range starts {
		if t.Before(prev) {
			t = prev // starts stay in order, so Concurrent holds at every start
		}
		length := s.dur(5*time.Minute, 40*time.Minute)
		root, t := s.placeFault(t, length)
		prev = t
		s.fault(i+1, root, t, length)
	}
}

// placeFault picks the kind of the root first and delays the fault until a
// root of that kind is far enough from the active groups (a switch, whose
// failure reaches far, may wait for a quiet time); after maxWait it tries
// another kind.
func (s *gen) placeFault(t time.Time, length time.Duration) (int32, time.Time) {
	const maxWait = 90 * time.Minute
	k := s.randomKind(&rootWeight)
	waited := time.Duration(0)
	for {
		for {
			active, first := 0, time.Time{}
			for _, sp := range s.faultSpans {
				if !sp.from.After(t) && t.Before(sp.to) {
					active++
					if first.IsZero() || sp.to.Before(first) {
						first = sp.to
					}
				}
			}
			if active < s.cfg.Concurrent {
				break
			}
			t = first
		}
		sp := span{t.Add(-2 * time.Minute), t.Add(length + spread + quiet)}
		for range 40 {
			root := s.of(k)
			foot := s.g.footprint(s.w, root, maxHops)
			if s.free(foot, sp) {
				s.occupy(foot, sp)
				s.faultSpans = append(s.faultSpans, span{t, t.Add(length + spread)})
				return root, t
			}
		}
		t = t.Add(time.Minute)
		if waited += time.Minute; waited > maxWait {
			k, waited = s.randomKind(&rootWeight), 0
		}
	}
}

// placeOne finds a CI for a single alert active from t for length, far from
// every group active then; it delays t when none is found.
func (s *gen) placeOne(t time.Time, length time.Duration) (int32, time.Time) {
	for {
		sp := span{t.Add(-time.Minute), t.Add(length + time.Minute + quiet)}
		for range 40 {
			ci := int32(s.r.IntN(len(s.g.cis)))
			foot := []int32{ci}
			if s.free(foot, sp) {
				s.occupy(foot, sp)
				return ci, t
			}
		}
		t = t.Add(time.Minute)
	}
}

// fault makes the alerts of fault n: root fails at t for length.
func (s *gen) fault(n int, root int32, t time.Time, length time.Duration) {
	id := "fault-" + strconv.Itoa(n)
	s.sc.Roots[id] = s.g.cis[root].ID
	type failed struct {
		ci  int32
		hop int
		at  time.Time
	}
	hits := []failed{{root, 0, t}}
	seen := map[int32]bool{root: true}
	for i := 0; i < len(hits); i++ {
		h := hits[i]
		if h.hop == maxHops {
			continue
		}
		for _, d := range s.g.down[h.ci] {
			if seen[d] {
				continue
			}
			seen[d] = true
			if s.r.Float64() < propagate {
				hits = append(hits, failed{d, h.hop + 1, h.at.Add(s.dur(10*time.Second, 90*time.Second))})
			}
		}
	}
	late := lateRoot
	if s.cfg.LateRoot > 0 {
		late = s.cfg.LateRoot
	}
	if len(hits) > 1 && s.r.Float64() < late {
		first := hits[1].at
		for _, h := range hits[2:] {
			if h.at.Before(first) {
				first = h.at
			}
		}
		hits[0].at = first.Add(s.dur(10*time.Second, 60*time.Second))
	}
	end := t.Add(length)
	if s.cfg.SilentRoot > 0 && len(hits) > 1 && s.r.Float64() < s.cfg.SilentRoot {
		hits = hits[1:] // the root is not monitored
	}
	for _, h := range hits {
		ciEnd := end.Add(s.dur(0, time.Duration(h.hop)*time.Minute))
		if ciEnd.Before(h.at.Add(2 * time.Minute)) {
			ciEnd = h.at.Add(2 * time.Minute)
		}
		defs := failures[s.g.kinds[h.ci]]
		first := s.r.IntN(len(defs))
		if h.hop == 0 && s.r.Float64() < 0.6 {
			first = 0 // the root's own outage
		}
		s.alert(id, h.ci, defs[first], h.at, ciEnd)
		if s.r.Float64() < 0.25 {
			second := (first + 1 + s.r.IntN(len(defs)-1)) % len(defs)
			s.alert(id, h.ci, defs[second], h.at.Add(s.dur(0, time.Minute)), ciEnd)
		}
	}
}

// flaps makes cfg.Flapping alerts that fire for 1–2 minutes, resolve for
// 1–2 minutes, and again, for 10–30 minutes.
func (s *gen) flaps() {
	for i := range s.cfg.Flapping {
		t := s.cfg.Start.Add(s.dur(0, s.cfg.Duration))
		length := s.dur(10*time.Minute, 30*time.Minute)
		ci, t := s.placeOne(t, length)
		id := "flap-" + strconv.Itoa(i+1)
		defs := nuisances[s.g.kinds[ci]]
		labels, fp, ok := s.labels(ci, defs[s.r.IntN(len(defs))])
		if !ok {
			continue
		}
		s.record(id, ci, fp)
		sum := s.summary(ci, labels)
		for fire := t; fire.Before(t.Add(length)); {
			res := fire.Add(s.dur(time.Minute, 2*time.Minute))
			s.event(fp, labels, sum, triage.AlertFiring, fire, time.Time{}, fire.Add(s.dur(0, 10*time.Second)))
			s.event(fp, labels, sum, triage.AlertResolved, fire, res, res.Add(s.dur(0, 10*time.Second)))
			fire = res.Add(s.dur(time.Minute, 2*time.Minute))
		}
	}
}

// noise makes cfg.Noise single alerts of 2–20 minutes: half on a CI away
// from every active group, half naming no CI.
func (s *gen) noise() {
	for i := range s.cfg.Noise {
		t := s.cfg.Start.Add(s.dur(0, s.cfg.Duration))
		length := s.dur(2*time.Minute, 20*time.Minute)
		id := "noise-" + strconv.Itoa(i+1)
		if len(s.g.cis) == 0 || s.r.IntN(2) == 0 {
			s.alert(id, -1, detached[s.r.IntN(len(detached))], t, t.Add(length))
			continue
		}
		ci, t := s.placeOne(t, length)
		defs := nuisances[s.g.kinds[ci]]
		s.alert(id, ci, defs[s.r.IntN(len(defs))], t, t.Add(length))
	}
}

// alert makes one alert of group on ci (-1: none) that fires from onset
// until end, notified like Alertmanager does.
func (s *gen) alert(group string, ci int32, def alertDef, onset, end time.Time) {
	labels, fp, ok := s.labels(ci, def)
	if !ok {
		return
	}
	s.record(group, ci, fp)
	sum := s.summary(ci, labels)
	repeat := s.dur(time.Minute, 5*time.Minute)
	at := onset.Add(s.dur(0, 30*time.Second))
	for {
		s.event(fp, labels, sum, triage.AlertFiring, onset, time.Time{}, at)
		if at = at.Add(repeat); !at.Before(end) {
			break
		}
	}
	s.event(fp, labels, sum, triage.AlertResolved, onset, end, end.Add(s.dur(0, 30*time.Second)))
}

func (s *gen) record(group string, ci int32, fp string) {
	s.sc.Truth[fp] = group
	if ci >= 0 {
		s.sc.AlertCI[fp] = s.g.cis[ci].ID
	}
}

// labels makes the label set of a new alert def on ci (-1: none) with a
// fingerprint no other alert of the scenario has. It fails, rarely, when
// every variant it tried was taken.
func (s *gen) labels(ci int32, def alertDef) (map[string]string, string, bool) {
	for range 20 {
		l := map[string]string{"alertname": def.name, "severity": def.severity}
		if ci >= 0 {
			s.ciLabel(ci, l)
			if s.r.IntN(4) == 0 {
				l["cluster"] = s.g.dc[ci]
			}
		}
		if def.extra != nil {
			k, v := def.extra(s.r)
			l[k] = v
		}
		if s.r.IntN(3) == 0 {
			l["env"] = "prod"
		}
		fp := triage.Fingerprint(l)
		if !s.used[fp] {
			s.used[fp] = true
			return l, fp, true
		}
	}
	return nil, "", false
}

// exporter is the exporter port and job of the CIs that run on hosts.
var exporter = [numKinds]struct{ port, job string }{
	kindDB:    {"9187", "postgres"},
	kindCache: {"9121", "redis"},
	kindQueue: {"9308", "kafka"},
}

// ciLabel names ci in one of the ways monitoring does: by id, by an alias
// in instance or hostname, by device or service name, or by job.
func (s *gen) ciLabel(ci int32, l map[string]string) {
	c := &s.g.cis[ci]
	k := s.g.kinds[ci]
	switch k {
	case kindCore, kindAccess:
		if s.r.IntN(2) == 0 {
			l["ci"] = c.ID
		} else {
			l["device"] = c.Name
		}
	case kindHost:
		switch s.r.IntN(3) {
		case 0:
			l["ci"] = c.ID
		case 1:
			l["instance"] = c.Aliases[0] + ":9100"
			l["job"] = "node"
		default:
			l["hostname"] = c.Aliases[1]
		}
	case kindDB, kindCache, kindQueue:
		switch s.r.IntN(3) {
		case 0:
			l["ci"] = c.ID
		case 1:
			l["instance"] = c.Aliases[0] + ":" + exporter[k].port
			l["job"] = exporter[k].job
		default:
			l["job"] = c.Name
		}
	case kindService:
		switch s.r.IntN(4) {
		case 0:
			l["ci"] = c.ID
		case 1:
			l["service"] = c.Name
		case 2:
			l["job"] = c.Name
		default:
			l["ci"] = c.ID
			l["service"] = c.Name
		}
	}
}

// event appends one notification.
func (s *gen) event(fp string, labels map[string]string, sum string, st triage.AlertStatus, starts, ends, at time.Time) {
	s.sc.Events = append(s.sc.Events, triage.Event{
		Source:      "alertmanager",
		Fingerprint: fp,
		Status:      st,
		Labels:      maps.Clone(labels),
		Annotations: map[string]string{"summary": sum},
		StartsAt:    starts,
		EndsAt:      ends,
		Time:        at,
	})
}

// summary is the one-line description Prometheus rules usually carry.
func (s *gen) summary(ci int32, labels map[string]string) string {
	if ci >= 0 {
		return labels["alertname"] + " on " + s.g.cis[ci].Name
	}
	for _, k := range []string{"domain", "target", "backup", "contract", "zone"} {
		if v := labels[k]; v != "" {
			return labels["alertname"] + " on " + v
		}
	}
	return labels["alertname"]
}

// sortGroupIDs orders group ids: faults, flaps, then noise, each by number.
func sortGroupIDs(ids []string) {
	rank := func(id string) (int, int) {
		kind, num, _ := strings.Cut(id, "-")
		n, _ := strconv.Atoi(num)
		switch kind {
		case "fault":
			return 0, n
		case "flap":
			return 1, n
		}
		return 2, n
	}
	slices.SortFunc(ids, func(a, b string) int {
		ka, na := rank(a)
		kb, nb := rank(b)
		if ka != kb {
			return ka - kb
		}
		if na != nb {
			return na - nb
		}
		return strings.Compare(a, b)
	})
}
