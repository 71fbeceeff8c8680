// Package correlate turns events into incidents: it deduplicates
// notifications into alerts, groups alerts into incidents, runs the incident
// lifecycle, and keeps that state durable in an embedded store.
//
// The Engine is the deterministic core: it takes events in order with the
// time to use, and records the changes it makes. It reads no clock, starts no
// goroutine and does no I/O, so the same code runs live, in replay and in
// golden-file tests. The Service wraps it with durability.
package correlate

import (
	"container/heap"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/triage-dev/triage"
)

// Options are the correlation settings of the Engine.
type Options struct {
	// ResolveAfter is how long an incident whose alerts have all resolved
	// stays open before it resolves on its own; 0 resolves at once.
	ResolveAfter time.Duration
	// ReopenWindow is how long after it resolved an incident reopens when
	// one of its alerts fires again; after it, a re-fire opens a new incident.
	ReopenWindow time.Duration
	// CILabels is the label order used to bind an alert to a configuration item.
	CILabels []string
	// Topology is the CMDB alerts bind to; nil when there is none.
	Topology *Topology
	// Rules are consulted for each new alert; nil for none.
	Rules Rules
	// MinAlerts holds a new incident (Held) until it has this many alerts;
	// 0 or 1 holds none.
	MinAlerts int
	// Flapping marks alerts that change state too often.
	Flapping Flapping
	// Priority, when its Matrix is set, gives incidents the priority of
	// their impact × urgency instead of their severity's.
	Priority *PriorityMatrix
}

// PriorityMatrix is the ITIL priority model: an incident's impact (the
// tier of the CIs it touches, the number of services affected) and its
// urgency (its alerts' severity) pick a priority in Matrix. Levels are
// "low", "medium" and "high"; anything not mapped is low. An enrich rule's
// priority still wins when it is more urgent. The priority is reassessed
// as alerts join and only rises.
type PriorityMatrix struct {
	// TierAttribute is the CI attribute holding its tier ("tier").
	TierAttribute string
	// Tiers maps a tier value to an impact level, e.g. {"1": high}.
	Tiers map[string]string
	// Services maps an impact level to the number of affected services
	// that reaches it, e.g. {high: 3, medium: 2}.
	Services map[string]int
	// Urgency maps a severity to an urgency level.
	Urgency map[string]string
	// Matrix maps impact → urgency → P1..P5; every cell must be set.
	Matrix map[string]map[string]string
}

// Levels of impact and urgency, lowest first.
var Levels = []string{"low", "medium", "high"}

func levelRank(l string) int8 {
	switch l {
	case "high":
		return 2
	case "medium":
		return 1
	}
	return 0
}

// Flapping marks an alert flapping when it changes state (fires, resolves)
// Changes times within Window. While it flaps its changes are held: it
// counts as firing for its incident, which neither resolves nor reopens
// because of it, and its changes add no timeline entries. It stops
// flapping after Window without a change. Changes 0 turns detection off.
type Flapping struct {
	Changes int
	Window  time.Duration
}

// DefaultCILabels is the default label order for binding an alert to a CI.
var DefaultCILabels = []string{"ci", "instance", "host", "hostname", "node", "device", "pod", "service", "job"}

// Errors callers branch on.
var (
	ErrNotFound = errors.New("incident not found")
	ErrConflict = errors.New("incident is in the wrong state")
	ErrInvalid  = errors.New("invalid request")
)

// Result says what one event did.
type Result struct {
	IncidentID  uint64
	Duplicate   bool // a repeated notification of a known alert
	NewIncident bool
	Ignored     bool // a resolved notification for an alert never seen firing
	// Dropped is set when a rule or maintenance window dropped the event;
	// Rule names it and Reason says why.
	Dropped bool
	Rule    string
	Reason  string
}

// Changes are the records the Engine changed since the last Flush. The
// pointers stay owned by the Engine and are valid until its next call.
type Changes struct {
	// Alerts changed state: status, severity, count, times.
	Alerts []*triage.Alert
	// AlertDetails need their full record written: new alerts and alerts
	// whose annotations or generator URL changed. They are also in Alerts.
	AlertDetails []*triage.Alert
	Incidents    []*triage.Incident
	// Archived are incidents only the Store holds (evicted from the engine)
	// whose record changed, e.g. a ticket recorded late; the Service fills
	// them, not the Engine.
	Archived []*triage.Incident
	Timeline []TimelineChange
	// Evicted incidents left the live set: they are resolved and past the
	// reopen window, so no event can change them any more.
	Evicted []uint64
	// Offsets are the source positions (Kafka partitions) this step applied
	// up to; the Service fills them, not the Engine.
	Offsets []SourceOffset
}

// SourceOffset is how far one source partition has been applied.
type SourceOffset struct {
	Partition string // "topic/partition"
	Offset    int64
}

// Empty reports whether there is nothing to persist.
func (c *Changes) Empty() bool {
	return len(c.Alerts) == 0 && len(c.Incidents) == 0 && len(c.Archived) == 0 && len(c.Timeline) == 0 && len(c.Evicted) == 0 && len(c.Offsets) == 0
}

// TimelineChange is a new timeline entry of one incident.
type TimelineChange struct {
	IncidentID uint64
	Entry      triage.TimelineEntry
}

type alertState struct {
	triage.Alert
	inc *incidentState
	// detailHash identifies the annotations and generator URL written last:
	// once written they are dropped from memory and only their hash is
	// kept to notice a change. Its top two bits are flags: the alert's state
	// changed since the last Flush (dirty), and its full record must be
	// written (detail).
	detailHash uint64
	// expiryAt is when the earliest queued expiry timer of this alert fires;
	// timers at other times are stale.
	expiryAt int64 // Unix nanoseconds, 0 for none
	// packed holds the labels once the details are written; Labels is nil
	// then (see packedLabels).
	packed packedLabels
}

const (
	flagDirty  uint64 = 1 << 63
	flagDetail uint64 = 1 << 62
	hashBits          = flagDetail - 1
)

func (a *alertState) dirty() bool  { return a.detailHash&flagDirty != 0 }
func (a *alertState) detail() bool { return a.detailHash&flagDetail != 0 }
func (a *alertState) setFlag(f uint64, on bool) {
	if on {
		a.detailHash |= f
	} else {
		a.detailHash &^= f
	}
}

// setHash records the hash of the details, keeping the flags.
func (a *alertState) setHash(h uint64) { a.detailHash = a.detailHash&^hashBits | h&hashBits }
func (a *alertState) hash() uint64     { return a.detailHash & hashBits }

type incidentState struct {
	triage.Incident
	alerts []*alertState
	dirty  bool
	// pm is the priority matrix assessment; nil without a matrix.
	pm *assessment
}

// assessment is an incident's impact and urgency so far.
type assessment struct {
	impact, urgency       int8
	impactWhy, urgencyWhy string
	services              map[string]struct{} // capped: only whether a threshold is reached matters
}

// Engine is the deterministic correlation core. It is not safe for
// concurrent use: one goroutine owns it.
type Engine struct {
	opts      Options
	grouper   Grouper
	alerts    map[string]*alertState // by fingerprint, for live incidents
	incidents map[uint64]*incidentState
	lastID    uint64
	timers    timerHeap
	open      int // incidents not resolved
	changes   Changes
	dirtyA    []*alertState
	dirtyI    []*incidentState
	shed      []*alertState // details written at the last Flush: drop them from memory
	// flips are the times of the recent state changes of alerts that
	// changed state, for flap detection (only with correlation.flapping).
	flips map[*alertState][]time.Time
	seed  maphash.Seed // for detailHash; hashes are compared within a process only
}

// NewEngine returns an empty engine that groups alerts with g.
func NewEngine(opts Options, g Grouper) *Engine {
	if opts.CILabels == nil {
		opts.CILabels = DefaultCILabels
	}
	return &Engine{
		opts:      opts,
		grouper:   g,
		alerts:    make(map[string]*alertState),
		incidents: make(map[uint64]*incidentState),
		flips:     make(map[*alertState][]time.Time),
		seed:      maphash.MakeSeed(),
	}
}

// OpenIncidents is the number of incidents not resolved.
func (e *Engine) OpenIncidents() int { return e.open }

// LiveAlerts is the number of alerts the engine holds in memory.
func (e *Engine) LiveAlerts() int { return len(e.alerts) }

// LastID is the highest incident id the engine has handed out.
func (e *Engine) LastID() uint64 { return e.lastID }

// Process applies one normalised event at time now.
func (e *Engine) Process(ev *triage.Event, now time.Time) Result {
	if a, ok := e.alerts[ev.Fingerprint]; ok {
		inc := a.inc
		if inc.Status == triage.IncidentResolved && ev.Status == triage.AlertFiring &&
			now.Sub(*inc.ResolvedAt) > e.opts.ReopenWindow {
			// Past the reopen window but not yet evicted by Tick: evict now
			// so that this firing opens a new incident.
			e.evict(inc)
		} else {
			e.update(a, ev, now)
			return Result{IncidentID: inc.ID, Duplicate: true}
		}
	}
	if ev.Status == triage.AlertResolved {
		return Result{Ignored: true}
	}
	binding := e.opts.Topology.Bind(ev.Labels, e.opts.CILabels)
	var adm Admission
	if e.opts.Rules != nil {
		// Rules work on a copy: the caller's event (and the event log) keeps
		// what the sender sent.
		evc := *ev
		adm = e.opts.Rules.Admit(&evc, e.opts.Topology.ciOf(binding), now)
		if adm.Drop {
			return Result{Dropped: true, Rule: adm.Rule, Reason: adm.Reason}
		}
		if adm.Routing.Severity == "" && evc.Severity != ev.Severity {
			adm.Routing.Severity = evc.Severity // set by a rule: notifications do not change it
		}
		ev = &evc
		if len(adm.Enriched) > 0 {
			binding = e.opts.Topology.Bind(ev.Labels, e.opts.CILabels)
		}
	}
	ci := e.ciOf(ev.Labels)
	if binding != nil {
		ci = binding.CI
	}
	a := &alertState{Alert: triage.Alert{
		Fingerprint:  ev.Fingerprint,
		Source:       ev.Source,
		Status:       triage.AlertFiring,
		Severity:     ev.Severity,
		CI:           ci,
		Binding:      binding,
		Routing:      routingOf(adm.Routing),
		Maintenance:  adm.Maintenance,
		Labels:       ev.Labels,
		Annotations:  ev.Annotations,
		Count:        1,
		StartsAt:     orTime(ev.StartsAt, now),
		FirstSeen:    now,
		LastSeen:     now,
		GeneratorURL: ev.GeneratorURL,
	}}
	as := e.grouper.Assign(&a.Alert, now, e)
	reason := as.Reason
	if len(adm.Enriched) > 0 {
		reason += "; enriched by " + strings.Join(adm.Enriched, ", ")
	}
	if adm.Maintenance != "" {
		reason += "; fired during maintenance window " + adm.Maintenance
	}
	a.Joined = triage.Explanation{Fingerprint: a.Fingerprint, Reason: reason, Rule: as.Rule,
		GroupKey: as.GroupKey, Path: as.Path, At: now}
	res := Result{}
	inc := e.incidents[as.IncidentID]
	if inc == nil || inc.Status == triage.IncidentResolved {
		inc = e.openIncident(a, as, now)
		res.NewIncident = true
	} else {
		e.join(inc, a, now)
	}
	res.IncidentID = inc.ID
	e.alerts[a.Fingerprint] = a
	e.grouper.Join(inc.ID, &a.Alert, now)
	if len(as.Merge) > 0 {
		e.merge(inc, as.Merge, a, now)
	}
	e.updateRootCause(inc, now)
	e.setExpiry(a, ev.EndsAt, now)
	a.setHash(e.detailHash(a.Annotations, a.GeneratorURL))
	e.markDetail(a)
	return res
}

// update applies a notification of a known alert.
func (e *Engine) update(a *alertState, ev *triage.Event, now time.Time) {
	inc := a.inc
	a.Count++
	a.LastSeen = now
	if len(ev.Annotations) > 0 || ev.GeneratorURL != "" {
		if h := e.detailHash(ev.Annotations, ev.GeneratorURL); h != a.hash() {
			a.setHash(h)
			a.Annotations, a.GeneratorURL = ev.Annotations, ev.GeneratorURL
			a.Labels = a.labels() // the details written again carry them (until shed)
			e.markDetail(a)
		}
	}
	inc.EventCount++
	inc.UpdatedAt = now
	switch {
	case ev.Status == triage.AlertFiring && a.Status == triage.AlertResolved:
		if !ev.StartsAt.IsZero() && ev.StartsAt.Equal(a.StartsAt) && (!a.Expired || !ev.Time.After(a.EndsAt)) {
			// A late copy of the occurrence that already resolved (an HA
			// Alertmanager pair, a route with continue): the same start. After
			// an expiry, the same occurrence sent again is still firing.
			break
		}
		wasFlapping := a.Flapping
		e.flip(a, now)
		a.Expired = false
		a.Status = triage.AlertFiring
		a.StartsAt = orTime(ev.StartsAt, now)
		a.EndsAt = time.Time{}
		if !wasFlapping { // a flapping alert already counts as firing
			inc.FiringCount++
			e.refired(inc, a, now)
		}
	case ev.Status == triage.AlertFiring && inc.Status == triage.IncidentResolved && ev.StartsAt.After(a.StartsAt):
		// A new occurrence of an alert that a person resolved while it still fired.
		a.StartsAt = ev.StartsAt
		e.refired(inc, a, now)
	case ev.Status == triage.AlertResolved && a.Status == triage.AlertFiring:
		end := ev.EndsAt
		if end.IsZero() {
			end = now
		}
		if end.Before(a.StartsAt) {
			break // stale: it ended before the occurrence we hold began
		}
		e.resolveAlert(a, end, now, "resolved")
	}
	if ev.Status == triage.AlertFiring && a.Status == triage.AlertFiring {
		e.setExpiry(a, ev.EndsAt, now)
	}
	if inc.Status != triage.IncidentResolved {
		e.grouper.Touch(inc.ID, now)
		ruleSeverity := a.Routing != nil && a.Routing.Severity != ""
		if !ruleSeverity && triage.SeverityRank(ev.Severity) > triage.SeverityRank(a.Severity) {
			a.Severity = ev.Severity
			before := inc.Priority
			e.notePriority(inc, a)
			e.notePriorityChange(inc, before, now)
			e.raiseSeverity(inc, a.Severity, now)
		}
	}
	e.markAlert(a)
	e.markIncident(inc)
}

// resolveAlert marks a firing alert resolved at end and resolves its
// incident after resolve_after once no alert of it fires.
func (e *Engine) resolveAlert(a *alertState, end, now time.Time, how string) {
	inc := a.inc
	a.Status = triage.AlertResolved
	a.EndsAt = end
	a.expiryAt = 0
	if e.flip(a, now) {
		e.markAlert(a) // held: it still counts as firing
		return
	}
	inc.FiringCount--
	inc.UpdatedAt = now
	e.addTimeline(inc, now, triage.KindAlertResolved, triage.ActorSystem, a.name()+" "+how, a.Fingerprint)
	if inc.FiringCount == 0 && inc.Status != triage.IncidentResolved {
		e.scheduleResolve(inc, now)
	}
	e.markAlert(a)
	e.markIncident(inc)
}

// flip records a state change of a; it reports whether the alert is
// flapping (its changes are held).
func (e *Engine) flip(a *alertState, now time.Time) bool {
	f := e.opts.Flapping
	if f.Changes < 2 {
		return false
	}
	flips := e.flips[a]
	keep := flips[:0]
	for _, t := range flips {
		if now.Sub(t) < f.Window {
			keep = append(keep, t)
		}
	}
	flips = append(keep, now)
	if len(flips) > f.Changes {
		flips = flips[len(flips)-f.Changes:]
	}
	e.flips[a] = flips
	if !a.Flapping && len(flips) >= f.Changes {
		a.Flapping = true
		e.addTimeline(a.inc, now, triage.KindFlapping, triage.ActorSystem,
			fmt.Sprintf("%s is flapping: %d state changes within %s; its changes are held until it is stable for %s",
				a.name(), len(flips), f.Window, f.Window), a.Fingerprint)
		heap.Push(&e.timers, timer{at: now.Add(f.Window), id: a.IncidentID, fp: a.Fingerprint, kind: timerFlap})
		e.markIncident(a.inc)
	}
	return a.Flapping
}

// unflap ends flapping once an alert has not changed state for the window,
// and applies the state it settled in.
func (e *Engine) unflap(t timer) {
	a := e.alerts[t.fp]
	if a == nil || a.IncidentID != t.id || !a.Flapping {
		return
	}
	last := a.LastSeen
	if flips := e.flips[a]; len(flips) > 0 {
		last = flips[len(flips)-1]
	}
	if due := last.Add(e.opts.Flapping.Window); due.After(t.at) {
		heap.Push(&e.timers, timer{at: due, id: t.id, fp: t.fp, kind: timerFlap})
		return
	}
	a.Flapping = false
	delete(e.flips, a)
	inc := a.inc
	e.addTimeline(inc, t.at, triage.KindFlapping, triage.ActorSystem,
		fmt.Sprintf("%s stopped flapping: %s, no change for %s", a.name(), a.Status, e.opts.Flapping.Window), a.Fingerprint)
	if a.Status == triage.AlertResolved {
		inc.FiringCount--
		if inc.FiringCount == 0 && inc.Status != triage.IncidentResolved {
			e.scheduleResolve(inc, t.at)
		}
	}
	e.markAlert(a)
	e.markIncident(inc)
}

// setExpiry records when a firing alert expires unless notified again, as
// Alertmanager does with the endsAt of alerts Prometheus posts.
func (e *Engine) setExpiry(a *alertState, endsAt, now time.Time) {
	if endsAt.IsZero() || !endsAt.After(now) {
		return
	}
	a.EndsAt = endsAt
	if a.expiryAt == 0 || endsAt.UnixNano() < a.expiryAt {
		e.queueExpiry(a, endsAt)
	}
}

func (e *Engine) queueExpiry(a *alertState, at time.Time) {
	a.expiryAt = at.UnixNano()
	heap.Push(&e.timers, timer{at: at, id: a.IncidentID, fp: a.Fingerprint, kind: timerExpire})
}

func (e *Engine) refired(inc *incidentState, a *alertState, now time.Time) {
	inc.AutoResolveAt = nil
	if inc.Status == triage.IncidentResolved {
		inc.Status = triage.IncidentOpen
		inc.ResolvedAt = nil
		inc.ReopenCount++
		e.open++
		e.addTimeline(inc, now, triage.KindReopened, triage.ActorSystem,
			"reopened: "+a.name()+" fired again", a.Fingerprint)
		// The grouper released it at resolution: it takes alerts again.
		for _, x := range inc.alerts {
			x.withLabels(func() { e.grouper.Join(inc.ID, &x.Alert, x.LastSeen) })
		}
		return
	}
	e.addTimeline(inc, now, triage.KindAlertRefired, triage.ActorSystem, a.name()+" fired again", a.Fingerprint)
}

func (e *Engine) openIncident(a *alertState, as Assignment, now time.Time) *incidentState {
	e.lastID++
	inc := &incidentState{Incident: triage.Incident{
		ID:          e.lastID,
		Key:         triage.IncidentKey(e.lastID),
		Title:       title(a),
		Status:      triage.IncidentOpen,
		Severity:    a.Severity,
		Priority:    e.initialPriority(a),
		CI:          a.CI,
		Service:     a.Labels["service"],
		GroupKey:    as.GroupKey,
		Labels:      maps.Clone(a.Labels),
		AlertCount:  1,
		FiringCount: 1,
		EventCount:  1,
		OpenedAt:    now,
		UpdatedAt:   now,
		RootCause:   triage.RootCause{CI: a.CI, Reason: "the incident's first alert names it"},
	}}
	if a.CI == "" {
		inc.RootCause.Reason = "no alert names a configuration item"
	}
	e.route(inc, a)
	e.serviceFromCI(inc, a)
	if e.opts.MinAlerts > 1 {
		inc.Held = true
	}
	inc.alerts = []*alertState{a}
	a.inc = inc
	a.IncidentID = inc.ID
	e.incidents[inc.ID] = inc
	e.open++
	e.addTimeline(inc, now, triage.KindOpened, triage.ActorSystem, "opened by "+a.name()+": "+a.Joined.Reason, a.Fingerprint)
	if inc.Held {
		e.addTimeline(inc, now, triage.KindHeld, triage.ActorSystem,
			fmt.Sprintf("held: 1 of the %d alerts needed before it is notified (correlation.min_alerts)", e.opts.MinAlerts), "")
	}
	e.markIncident(inc)
	return inc
}

// initialPriority is a new incident's priority before route assesses it.
func (e *Engine) initialPriority(a *alertState) string {
	if e.opts.Priority != nil && e.opts.Priority.Matrix != nil {
		return ""
	}
	return alertPriority(a)
}

// notePriorityChange records a priority the matrix raised on the timeline.
func (e *Engine) notePriorityChange(inc *incidentState, before string, now time.Time) {
	if inc.pm != nil && before != "" && inc.Priority != before {
		e.addTimeline(inc, now, triage.KindPriorityChanged, triage.ActorSystem,
			fmt.Sprintf("priority %s → %s: %s", before, inc.Priority, inc.PriorityReason), "")
	}
}

// alertPriority is an alert's priority: the one an enrich rule set, else
// its severity's.
func alertPriority(a *alertState) string {
	if a.Routing != nil && a.Routing.Priority != "" {
		return a.Routing.Priority
	}
	return triage.PriorityForSeverity(a.Severity)
}

// notePriority raises the incident's priority to the alert's when higher:
// an incident's priority is the highest of its alerts' (by the matrix,
// when there is one, or by severity; a rule's priority either way).
func (e *Engine) notePriority(inc *incidentState, a *alertState) {
	p := alertPriority(a)
	if pm := e.opts.Priority; pm != nil && pm.Matrix != nil {
		p = e.assess(inc, a)
		if a.Routing != nil && a.Routing.Priority != "" && a.Routing.Priority < p {
			p = a.Routing.Priority
		}
	}
	if inc.Priority == "" || p < inc.Priority {
		inc.Priority = p
	}
}

// assess adds an alert to the incident's impact and urgency and returns
// the matrix priority, setting the incident's priority reason.
func (e *Engine) assess(inc *incidentState, a *alertState) string {
	pm := e.opts.Priority
	s := inc.pm
	if s == nil {
		s = &assessment{impactWhy: "no high-tier CI", urgencyWhy: "severity " + orNone(a.Severity)}
		inc.pm = s
	}
	svc := a.label("service")
	if e.opts.Topology != nil && a.Binding != nil {
		if ci, ok := e.opts.Topology.CI(a.Binding.CI); ok {
			attr := pm.TierAttribute
			if attr == "" {
				attr = "tier"
			}
			if tier := ci.Attributes[attr]; tier != "" {
				if r := levelRank(pm.Tiers[tier]); r > s.impact {
					s.impact, s.impactWhy = r, fmt.Sprintf("%s is %s %s", ci.ID, attr, tier)
				}
			}
			if svc == "" {
				svc = ci.Service
			}
		}
	}
	if svc != "" && len(s.services) < 64 {
		if s.services == nil {
			s.services = map[string]struct{}{}
		}
		s.services[svc] = struct{}{}
		n := len(s.services)
		for _, l := range []string{"high", "medium"} {
			if need := pm.Services[l]; need > 0 && n >= need && levelRank(l) > s.impact {
				s.impact, s.impactWhy = levelRank(l), fmt.Sprintf("%d services affected", n)
			}
		}
	}
	if r := levelRank(pm.Urgency[a.Severity]); r > s.urgency {
		s.urgency, s.urgencyWhy = r, "severity "+a.Severity
	}
	imp, urg := Levels[s.impact], Levels[s.urgency]
	p := pm.Matrix[imp][urg]
	inc.PriorityReason = fmt.Sprintf("impact %s (%s) × urgency %s (%s) → %s", imp, s.impactWhy, urg, s.urgencyWhy, p)
	return p
}

// route applies what enrich rules set on a joining alert: its priority
// (through notePriority), and service, assignment group and Jira project
// where the incident has none yet.
func (e *Engine) route(inc *incidentState, a *alertState) {
	e.notePriority(inc, a)
	if a.Routing == nil {
		return
	}
	r := a.Routing
	if r.Service != "" && (inc.Service == "" || inc.Service == inc.Labels["service"] && len(inc.alerts) <= 1) {
		inc.Service = r.Service
	}
	if inc.AssignmentGroup == "" {
		inc.AssignmentGroup = r.AssignmentGroup
	}
	if inc.Project == "" {
		inc.Project = r.Project
	}
}

// routingOf keeps routing off the alert (nil) when rules set none.
func routingOf(r triage.Routing) *triage.Routing {
	if r.IsZero() {
		return nil
	}
	return &r
}

// serviceFromCI names the incident's business service from the CMDB when
// no label or rule did: the service of the CI the alert bound to.
func (e *Engine) serviceFromCI(inc *incidentState, a *alertState) {
	if inc.Service != "" {
		return
	}
	if ci := e.opts.Topology.ciOf(a.Binding); ci != nil {
		inc.Service = ci.Service
	}
}

// commonLabels keeps the labels every alert of the incident shares.
func commonLabels(inc *incidentState, labels map[string]string) {
	for k, v := range inc.Labels {
		if labels[k] != v {
			delete(inc.Labels, k)
		}
	}
}

// merge moves the alerts of other open incidents into inc: a new alert
// showed they share its cause. The merged incidents resolve as merged and
// leave the live set; their alerts stay stored under their own ids.
func (e *Engine) merge(inc *incidentState, ids []uint64, by *alertState, now time.Time) {
	before := inc.Priority
	defer e.notePriorityChange(inc, before, now)
	var merged []string
	moved := 0
	for _, id := range ids {
		src := e.incidents[id]
		if src == nil || src == inc || src.Status == triage.IncidentResolved {
			continue
		}
		e.grouper.Release(src.ID)
		for _, a := range src.alerts {
			a.inc = inc
			inc.alerts = append(inc.alerts, a)
			a.withLabels(func() {
				commonLabels(inc, a.Labels)
				e.route(inc, a)
				e.grouper.Join(inc.ID, &a.Alert, a.LastSeen)
			})
		}
		inc.AlertCount += src.AlertCount
		inc.FiringCount += src.FiringCount
		inc.EventCount += src.EventCount
		inc.Merged = append(append(inc.Merged, src.ID), src.Merged...)
		if inc.FiringCount > 0 {
			inc.AutoResolveAt = nil
		}
		if inc.OpenedAt.After(src.OpenedAt) {
			inc.OpenedAt = src.OpenedAt
		}
		inc.UpdatedAt = now
		e.raiseSeverity(inc, src.Severity, now)
		merged = append(merged, src.Key)
		moved += src.AlertCount
		into := inc.ID
		src.MergedInto = &into
		src.Status = triage.IncidentResolved
		t := now
		src.ResolvedAt = &t
		src.AutoResolveAt = nil
		src.UpdatedAt = now
		src.alerts = nil
		e.open--
		e.addTimeline(src, now, triage.KindMerged, triage.ActorSystem, "merged into "+inc.Key+": "+by.name()+" links both", by.Fingerprint)
		e.markIncident(src)
		delete(e.incidents, src.ID)
		e.changes.Evicted = append(e.changes.Evicted, src.ID)
	}
	if len(merged) > 0 {
		// One entry however many merged: a hub failure can merge thousands.
		list := strings.Join(merged[:min(len(merged), 10)], ", ")
		if len(merged) > 10 {
			list += fmt.Sprintf(" and %d more", len(merged)-10)
		}
		e.addTimeline(inc, now, triage.KindMerged, triage.ActorSystem,
			fmt.Sprintf("merged %s (%d alerts) into it: %s links them", list, moved, by.name()), by.Fingerprint)
	}
	e.releaseHeld(inc, now)
	e.markIncident(inc)
}

// releaseHeld notifies a held incident once it has min_alerts alerts.
func (e *Engine) releaseHeld(inc *incidentState, now time.Time) {
	if inc.Held && inc.AlertCount >= e.opts.MinAlerts {
		inc.Held = false
		e.addTimeline(inc, now, triage.KindReleased, triage.ActorSystem,
			fmt.Sprintf("released: %d alerts reached correlation.min_alerts", inc.AlertCount), "")
	}
}

// updateRootCause asks the grouper for the incident's root cause and
// records a change on the timeline.
func (e *Engine) updateRootCause(inc *incidentState, now time.Time) {
	rc, ok := e.grouper.(RootCauser)
	if !ok {
		return
	}
	r, ok := rc.RootCause(inc.ID)
	if !ok || r == inc.RootCause {
		return
	}
	changed := r.CI != inc.RootCause.CI
	inc.RootCause = r
	inc.CI = r.CI
	if changed {
		e.addTimeline(inc, now, triage.KindRootCause, triage.ActorSystem, "root cause: "+r.CI+": "+r.Reason, "")
	}
	e.markIncident(inc)
}

// Incident implements OpenIncidents for the grouper.
func (e *Engine) Incident(id uint64) *triage.Incident {
	inc := e.incidents[id]
	if inc == nil || inc.Status == triage.IncidentResolved {
		return nil
	}
	return &inc.Incident
}

func (e *Engine) join(inc *incidentState, a *alertState, now time.Time) {
	inc.alerts = append(inc.alerts, a)
	a.inc = inc
	a.IncidentID = inc.ID
	inc.AlertCount++
	inc.FiringCount++
	inc.EventCount++
	inc.UpdatedAt = now
	inc.AutoResolveAt = nil
	msg := a.name() + " joined: " + a.Joined.Reason
	if len(a.Joined.Path) > 0 {
		msg += " via " + strings.Join(a.Joined.Path, " ")
	}
	e.addTimeline(inc, now, triage.KindAlertAdded, triage.ActorSystem, msg, a.Fingerprint)
	commonLabels(inc, a.Labels)
	before := inc.Priority
	e.route(inc, a)
	e.notePriorityChange(inc, before, now)
	e.serviceFromCI(inc, a)
	e.raiseSeverity(inc, a.Severity, now)
	e.releaseHeld(inc, now)
	e.markIncident(inc)
}

func (e *Engine) raiseSeverity(inc *incidentState, sev string, now time.Time) {
	if triage.SeverityRank(sev) <= triage.SeverityRank(inc.Severity) {
		return
	}
	old := inc.Severity
	inc.Severity = sev
	e.addTimeline(inc, now, triage.KindSeverityChanged, triage.ActorSystem,
		fmt.Sprintf("severity %s → %s, priority %s", orNone(old), sev, inc.Priority), "")
}

func (e *Engine) scheduleResolve(inc *incidentState, now time.Time) {
	if e.opts.ResolveAfter <= 0 {
		e.resolve(inc, now, triage.ActorSystem, "resolved: all alerts resolved")
		return
	}
	due := now.Add(e.opts.ResolveAfter)
	inc.AutoResolveAt = &due
	heap.Push(&e.timers, timer{at: due, id: inc.ID, kind: timerResolve})
}

func (e *Engine) resolve(inc *incidentState, now time.Time, actor, msg string) {
	inc.Status = triage.IncidentResolved
	inc.OnHold = false
	t := now
	inc.ResolvedAt = &t
	inc.AutoResolveAt = nil
	inc.UpdatedAt = now
	e.open--
	e.grouper.Release(inc.ID)
	e.addTimeline(inc, now, triage.KindResolved, actor, msg, "")
	e.markIncident(inc)
	heap.Push(&e.timers, timer{at: now.Add(e.opts.ReopenWindow), id: inc.ID, kind: timerEvict})
}

func (e *Engine) evict(inc *incidentState) {
	for _, a := range inc.alerts {
		if e.alerts[a.Fingerprint] == a {
			delete(e.alerts, a.Fingerprint)
		}
		delete(e.flips, a)
	}
	delete(e.incidents, inc.ID)
	e.changes.Evicted = append(e.changes.Evicted, inc.ID)
}

// Tick runs the timers due at or before now, in order, each at its own due
// time: alert expiry, auto-resolution, and eviction of incidents past their
// reopen window. Call it before processing events at now.
func (e *Engine) Tick(now time.Time) {
	for len(e.timers) > 0 && !e.timers[0].at.After(now) {
		t := heap.Pop(&e.timers).(timer)
		switch t.kind {
		case timerExpire:
			e.expire(t)
			continue
		case timerFlap:
			e.unflap(t)
			continue
		}
		inc := e.incidents[t.id]
		if inc == nil {
			continue
		}
		switch t.kind {
		case timerResolve:
			if inc.Status != triage.IncidentResolved && inc.FiringCount == 0 &&
				inc.AutoResolveAt != nil && inc.AutoResolveAt.Equal(t.at) {
				e.resolve(inc, t.at, triage.ActorSystem, fmt.Sprintf("resolved: all alerts resolved for %s", e.opts.ResolveAfter))
			}
		case timerEvict:
			if inc.Status == triage.IncidentResolved && !now.Before(inc.ResolvedAt.Add(e.opts.ReopenWindow)) {
				e.evict(inc)
			}

		}
	}
}

// expire resolves an alert whose ends_at passed without a new notification.
func (e *Engine) expire(t timer) {
	a := e.alerts[t.fp]
	if a == nil || a.IncidentID != t.id || a.expiryAt != t.at.UnixNano() {
		return // stale: the alert moved on, or an earlier timer replaced this one
	}
	a.expiryAt = 0
	if a.Status != triage.AlertFiring || a.EndsAt.IsZero() {
		return
	}
	if a.EndsAt.After(t.at) { // extended since: wait for the new end
		e.queueExpiry(a, a.EndsAt)
		return
	}
	a.Expired = true
	e.resolveAlert(a, a.EndsAt, t.at, "expired: not notified again before its ends_at")
}

// NextTimer is when Tick next has work, or the zero time.
func (e *Engine) NextTimer() time.Time {
	if len(e.timers) == 0 {
		return time.Time{}
	}
	return e.timers[0].at
}

// Acknowledge moves an open incident to acknowledged. Acknowledging an
// acknowledged incident changes nothing; a resolved one is ErrConflict.
func (e *Engine) Acknowledge(id uint64, actor string, now time.Time) error {
	inc, err := e.live(id)
	if err != nil {
		return err
	}
	switch inc.Status {
	case triage.IncidentAcknowledged:
		return nil
	case triage.IncidentResolved:
		return fmt.Errorf("acknowledge %s: %w: it is resolved", inc.Key, ErrConflict)
	}
	inc.Status = triage.IncidentAcknowledged
	if inc.AcknowledgedAt == nil {
		t := now
		inc.AcknowledgedAt = &t
	}
	inc.UpdatedAt = now
	e.addTimeline(inc, now, triage.KindAcknowledged, actor, "acknowledged", "")
	e.markIncident(inc)
	return nil
}

// Resolve resolves an incident by hand. Resolving a resolved incident changes nothing.
func (e *Engine) Resolve(id uint64, actor, note string, now time.Time) error {
	inc, err := e.live(id)
	if err != nil {
		return err
	}
	if inc.Status == triage.IncidentResolved {
		return nil
	}
	msg := "resolved by " + actor
	if note != "" {
		msg += ": " + note
	}
	e.resolve(inc, now, actor, msg)
	return nil
}

// Comment adds a comment to a live incident. It returns ErrNotFound for an
// incident that is not live; the caller records comments on those directly.
func (e *Engine) Comment(id uint64, actor, text string, now time.Time) error {
	inc, err := e.live(id)
	if err != nil {
		return err
	}
	e.addTimeline(inc, now, triage.KindComment, actor, text, "")
	return nil
}

// Note adds a timeline entry of any kind to a live incident (a connector's
// record of what it did, an assignment made in a ticket system). Like
// Comment, it returns ErrNotFound for an incident that is not live.
func (e *Engine) Note(id uint64, kind, actor, text string, now time.Time) error {
	inc, err := e.live(id)
	if err != nil {
		return err
	}
	if kind == triage.KindSLABreach {
		inc.SLABreaches++
		inc.UpdatedAt = now
		e.markIncident(inc)
	}
	e.addTimeline(inc, now, kind, actor, text, "")
	return nil
}

// Feedback records a satisfaction score on a live incident.
func (e *Engine) Feedback(id uint64, f triage.Feedback, now time.Time) error {
	inc, err := e.live(id)
	if err != nil {
		return err
	}
	f.At = now
	inc.Feedback = &f
	inc.UpdatedAt = now
	e.addTimeline(inc, now, triage.KindFeedback, f.Actor, FeedbackMessage(f), "")
	e.markIncident(inc)
	return nil
}

// FeedbackMessage is the timeline text of a score: "score 4/5: comment".
func FeedbackMessage(f triage.Feedback) string {
	msg := fmt.Sprintf("score %d/5", f.Score)
	if f.Comment != "" {
		msg += ": " + f.Comment
	}
	return msg
}

// SetTicket records the incident's issue in a ticket system, with a
// timeline entry. Recording the same ticket again changes nothing.
func (e *Engine) SetTicket(id uint64, t triage.Ticket, actor string, now time.Time) error {
	inc, err := e.live(id)
	if err != nil {
		return err
	}
	if inc.Ticket != nil && *inc.Ticket == t {
		return nil
	}
	inc.Ticket = &t
	inc.UpdatedAt = now
	e.addTimeline(inc, now, triage.KindTicket, actor, TicketMessage(t), "")
	e.markIncident(inc)
	return nil
}

// SetProblem links the incident to a problem, with a timeline entry.
// Linking it to the same problem again changes nothing.
func (e *Engine) SetProblem(id, problem uint64, actor string, now time.Time) error {
	inc, err := e.live(id)
	if err != nil {
		return err
	}
	if inc.ProblemID != nil && *inc.ProblemID == problem {
		return nil
	}
	inc.ProblemID = &problem
	inc.UpdatedAt = now
	e.addTimeline(inc, now, triage.KindProblem, actor, "linked to problem "+triage.ProblemKey(problem), "")
	e.markIncident(inc)
	return nil
}

// Hold puts an open or acknowledged incident on hold (on) or takes it off
// hold; SLA clocks stop while it is on hold. A resolved incident is
// ErrConflict; a hold that is already so changes nothing.
func (e *Engine) Hold(id uint64, on bool, actor, note string, now time.Time) error {
	inc, err := e.live(id)
	if err != nil {
		return err
	}
	if inc.Status == triage.IncidentResolved {
		return fmt.Errorf("hold %s: %w: it is resolved", inc.Key, ErrConflict)
	}
	if inc.OnHold == on {
		return nil
	}
	inc.OnHold = on
	inc.UpdatedAt = now
	kind, msg := triage.KindOnHold, "on hold"
	if !on {
		kind, msg = triage.KindOffHold, "off hold"
	}
	msg += " by " + actor
	if note != "" {
		msg += ": " + note
	}
	e.addTimeline(inc, now, kind, actor, msg, "")
	e.markIncident(inc)
	return nil
}

// TicketMessage is the timeline text of a recorded ticket.
func TicketMessage(t triage.Ticket) string {
	msg := t.System + " issue " + t.Key
	if t.URL != "" {
		msg += " " + t.URL
	}
	return msg
}

// Reopen reopens a resolved incident by hand (someone reopened its ticket).
// Reopening an open or acknowledged incident changes nothing. An incident
// past its reopen window is no longer live: ErrNotFound.
func (e *Engine) Reopen(id uint64, actor, note string, now time.Time) error {
	inc, err := e.live(id)
	if err != nil {
		return err
	}
	if inc.Status != triage.IncidentResolved {
		return nil
	}
	inc.Status = triage.IncidentOpen
	inc.ResolvedAt = nil
	inc.AutoResolveAt = nil
	inc.ReopenCount++
	inc.UpdatedAt = now
	e.open++
	msg := "reopened by " + actor
	if note != "" {
		msg += ": " + note
	}
	e.addTimeline(inc, now, triage.KindReopened, actor, msg, "")
	for _, x := range inc.alerts {
		x.withLabels(func() { e.grouper.Join(inc.ID, &x.Alert, x.LastSeen) })
	}
	e.markIncident(inc)
	return nil
}

func (e *Engine) live(id uint64) (*incidentState, error) {
	inc := e.incidents[id]
	if inc == nil {
		return nil, fmt.Errorf("%s: %w", triage.IncidentKey(id), ErrNotFound)
	}
	return inc, nil
}

// Restore loads one live incident and its alerts, as the store kept them,
// into an engine being rebuilt after a restart.
func (e *Engine) Restore(inc triage.Incident, alerts []triage.Alert) {
	is := &incidentState{Incident: inc}
	is.Alerts, is.Explanation, is.Timeline = nil, nil, nil
	for i := range alerts {
		a := &alertState{Alert: alerts[i], inc: is}
		a.setHash(e.detailHash(a.Annotations, a.GeneratorURL))
		a.Annotations, a.GeneratorURL = nil, ""
		is.alerts = append(is.alerts, a)
		e.alerts[a.Fingerprint] = a
		if pm := e.opts.Priority; pm != nil && pm.Matrix != nil {
			reason := is.PriorityReason
			e.assess(is, a) // rebuild impact and urgency; the priority is as stored
			is.PriorityReason = reason
		}
		if a.Status == triage.AlertFiring && !a.EndsAt.IsZero() {
			e.queueExpiry(a, a.EndsAt)
		}
		if a.Flapping {
			// Its last state change, on the receive clock flips use: no
			// later than its last notification, or its expiry.
			last := a.LastSeen
			if a.Status == triage.AlertResolved && a.EndsAt.After(last) {
				last = a.EndsAt
			}
			e.flips[a] = []time.Time{last}
			heap.Push(&e.timers, timer{at: last.Add(e.opts.Flapping.Window), id: a.IncidentID, fp: a.Fingerprint, kind: timerFlap})
		}
		if is.Status != triage.IncidentResolved {
			e.grouper.Join(is.ID, &a.Alert, a.LastSeen)
		}
		a.shedLabels()
	}
	e.incidents[is.ID] = is
	if is.ID > e.lastID {
		e.lastID = is.ID
	}
	switch {
	case is.Status == triage.IncidentResolved:
		heap.Push(&e.timers, timer{at: is.ResolvedAt.Add(e.opts.ReopenWindow), id: is.ID, kind: timerEvict})
	default:
		e.open++
		if is.AutoResolveAt != nil {
			heap.Push(&e.timers, timer{at: *is.AutoResolveAt, id: is.ID, kind: timerResolve})
		}
	}
}

// Reconfigure swaps the topology, rules and grouper, and has the new
// grouper index every open incident's alerts, in id order. Alerts keep the
// CI binding they were made with.
func (e *Engine) Reconfigure(topo *Topology, rules Rules, g Grouper) {
	e.opts.Topology, e.opts.Rules, e.grouper = topo, rules, g
	ids := make([]uint64, 0, len(e.incidents))
	for id, inc := range e.incidents {
		if inc.Status != triage.IncidentResolved {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, a := range e.incidents[id].alerts {
			a.withLabels(func() { g.Join(id, &a.Alert, a.LastSeen) })
		}
	}
}

// SetLastID makes sure new incidents get ids above id (ids of evicted
// incidents are never reused).
func (e *Engine) SetLastID(id uint64) {
	if id > e.lastID {
		e.lastID = id
	}
}

// Flush returns the changes since the last Flush and starts a new set.
func (e *Engine) Flush() Changes {
	for _, a := range e.shed {
		if !a.detail() { // written by the caller since: keep only the hash and the packed labels
			a.Annotations, a.GeneratorURL = nil, ""
			a.shedLabels()
		}
	}
	e.shed = e.shed[:0]
	c := e.changes
	for _, a := range e.dirtyA {
		a.setFlag(flagDirty, false)
		c.Alerts = append(c.Alerts, &a.Alert)
		if a.detail() {
			a.setFlag(flagDetail, false)
			c.AlertDetails = append(c.AlertDetails, &a.Alert)
			e.shed = append(e.shed, a)
		}
	}
	for _, inc := range e.dirtyI {
		inc.dirty = false
		c.Incidents = append(c.Incidents, &inc.Incident)
	}
	e.changes, e.dirtyA, e.dirtyI = Changes{}, e.dirtyA[:0], e.dirtyI[:0]
	return c
}

func (e *Engine) markAlert(a *alertState) {
	if !a.dirty() {
		a.setFlag(flagDirty, true)
		e.dirtyA = append(e.dirtyA, a)
	}
}

func (e *Engine) markDetail(a *alertState) {
	a.setFlag(flagDetail, true)
	e.markAlert(a)
}

func (e *Engine) markIncident(inc *incidentState) {
	if !inc.dirty {
		inc.dirty = true
		e.dirtyI = append(e.dirtyI, inc)
	}
}

func (e *Engine) addTimeline(inc *incidentState, now time.Time, kind, actor, msg, fp string) {
	e.changes.Timeline = append(e.changes.Timeline, TimelineChange{IncidentID: inc.ID, Entry: triage.TimelineEntry{
		Time: now, Kind: kind, Actor: actor, Message: msg, Fingerprint: fp,
	}})
}

// ciOf names the alert's configuration item: the value of the first label
// present in the binding order, with a port stripped from instance.
func (e *Engine) ciOf(labels map[string]string) string {
	for _, l := range e.opts.CILabels {
		v := labels[l]
		if v == "" {
			continue
		}
		if l == "instance" {
			if host, _, err := net.SplitHostPort(v); err == nil {
				v = host
			}
		}
		return v
	}
	return ""
}

func title(a *alertState) string {
	if s := strings.TrimSpace(a.Annotations["summary"]); s != "" {
		return truncate(s, 200)
	}
	name := a.name()
	if svc := a.label("service"); svc != "" {
		return name + " on " + svc
	}
	if a.CI != "" {
		return name + " on " + a.CI
	}
	return name
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// detailHash identifies an alert's annotations and generator URL, cheaply
// enough to run on every notification: entries are hashed one by one and
// summed, so map order does not matter and nothing is sorted or allocated.
func (e *Engine) detailHash(ann map[string]string, url string) uint64 {
	h := maphash.String(e.seed, url) ^ uint64(len(ann))
	for k, v := range ann {
		h += maphash.String(e.seed, k)*0x9E3779B97F4A7C15 ^ maphash.String(e.seed, v)
	}
	return h & hashBits // the top bits of alertState.detailHash are flags
}

func orTime(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

type timerKind uint8

const (
	timerResolve timerKind = iota
	timerEvict
	timerExpire
	timerFlap
)

type timer struct {
	at   time.Time
	id   uint64
	fp   string // for timerExpire
	kind timerKind
}

type timerHeap []timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].id < h[j].id
	}
	return h[i].at.Before(h[j].at)
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
