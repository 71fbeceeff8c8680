package rules

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/robfig/cron/v3"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
)

// Rule kinds.
const (
	KindDrop        = "drop"
	KindEnrich      = "enrich"
	KindGroup       = "group"
	KindCorrelate   = "correlate"
	KindLog         = "log"
	KindMaintenance = "maintenance"
)

// Info describes one loaded rule, for `triage check` and the API.
type Info struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	File string `json:"file"`
	Line int    `json:"line"`
	// Errors counts the events on which the rule's expression failed at
	// run time (and so did not match) since load.
	Errors uint64 `json:"errors"`
}

// Set is a loaded, compiled set of rules. It implements correlate.Rules.
type Set struct {
	all       []*rule
	enrich    []*rule
	drop      []*rule
	maint     []*rule
	group     []*rule
	correlate []*rule
	log       []*rule
	hash      string
	errors    atomic.Uint64
	vms       sync.Pool
}

var _ correlate.Rules = (*Set)(nil)

type rule struct {
	Info
	prog *vm.Program // nil: the rule has no if and always matches

	reason string // drop

	labels   map[string]string // enrich
	severity string
	routing  triage.Routing

	keys []string // correlate: labels both sides must share (see equalityKeys)

	by     []string // group
	window time.Duration

	cis        []string // maintenance
	ciLines    []int
	annotate   bool
	start, end time.Time          // one-off window
	sched      *cron.SpecSchedule // on loc's wall clock, see nextStart
	loc        *time.Location
	dur        time.Duration
	cache      atomic.Pointer[span] // last computed span of a recurring window

	errs atomic.Uint64
}

// span is a stretch of time [from, to) over which a recurring window is
// known to be active or inactive.
type span struct {
	from, to time.Time
	active   bool
}

// The environments expressions see. Field tags give the snake_case names.
type (
	alertEnv struct {
		Labels      map[string]string `expr:"labels"`
		Annotations map[string]string `expr:"annotations"`
		Severity    string            `expr:"severity"`
		Source      string            `expr:"source"`
		Status      string            `expr:"status"`
		Fingerprint string            `expr:"fingerprint"`
		CI          string            `expr:"ci"`
	}
	ciEnv struct {
		ID         string            `expr:"id"`
		Type       string            `expr:"type"`
		Name       string            `expr:"name"`
		Service    string            `expr:"service"`
		Aliases    []string          `expr:"aliases"`
		Attributes map[string]string `expr:"attributes"`
	}
	incidentEnv struct {
		ID         int               `expr:"id"`
		Key        string            `expr:"key"`
		Title      string            `expr:"title"`
		Status     string            `expr:"status"`
		Severity   string            `expr:"severity"`
		Priority   string            `expr:"priority"`
		CI         string            `expr:"ci"`
		Service    string            `expr:"service"`
		Labels     map[string]string `expr:"labels"`
		AlertCount int               `expr:"alert_count"`
		RootCause  string            `expr:"root_cause"`
	}
	// admitEnv is the environment of drop, enrich, maintenance and group rules.
	admitEnv struct {
		Alert alertEnv `expr:"alert"`
		CI    ciEnv    `expr:"ci"`
	}
	// correlateEnv is the environment of correlate rules.
	correlateEnv struct {
		Alert    alertEnv    `expr:"alert"`
		CI       ciEnv       `expr:"ci"`
		Incident incidentEnv `expr:"incident"`
	}
)

func ciEnvOf(ci *triage.CI) ciEnv {
	if ci == nil {
		return ciEnv{}
	}
	return ciEnv{ID: ci.ID, Type: ci.Type, Name: ci.Name, Service: ci.Service, Aliases: ci.Aliases, Attributes: ci.Attributes}
}

func alertEnvOf(a *triage.Alert) alertEnv {
	return alertEnv{Labels: a.Labels, Annotations: a.Annotations, Severity: a.Severity, Source: a.Source,
		Status: string(a.Status), Fingerprint: a.Fingerprint, CI: a.CI}
}

// Len is the number of rules.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.all)
}

// Hash identifies the rule sources (file names and contents), for a
// config-hash metric and to tell whether a reload changed anything.
func (s *Set) Hash() string {
	if s == nil {
		return ""
	}
	return s.hash
}

// Rules lists the rules in evaluation order.
func (s *Set) Rules() []Info {
	if s == nil {
		return nil
	}
	out := make([]Info, len(s.all))
	for i, r := range s.all {
		out[i] = r.Info
		out[i].Errors = r.errs.Load()
	}
	return out
}

// Errors is the number of times an expression failed at run time since
// load; each failure counted as "did not match".
func (s *Set) Errors() uint64 {
	if s == nil {
		return 0
	}
	return s.errors.Load()
}

func (s *Set) getVM() *vm.VM {
	if m, ok := s.vms.Get().(*vm.VM); ok {
		return m
	}
	return &vm.VM{MemoryBudget: MemoryBudget}
}

// match runs r's condition on env. A run-time error is counted and is no
// match.
func (s *Set) match(m *vm.VM, r *rule, env any) bool {
	if r.prog == nil {
		return true
	}
	out, err := m.Run(r.prog, env)
	if err != nil {
		r.errs.Add(1)
		s.errors.Add(1)
		return false
	}
	b, _ := out.(bool)
	return b
}

// Admit applies enrich rules, maintenance windows and drop rules, in that
// order, to an event about to create an alert; see the package doc. It
// replaces ev.Labels with a copy before changing labels.
func (s *Set) Admit(ev *triage.Event, ci *triage.CI, now time.Time) correlate.Admission {
	var adm correlate.Admission
	if s == nil || len(s.enrich)+len(s.maint)+len(s.drop) == 0 {
		return adm
	}
	env := &admitEnv{
		Alert: alertEnv{Labels: ev.Labels, Annotations: ev.Annotations, Severity: ev.Severity, Source: ev.Source,
			Status: string(ev.Status), Fingerprint: ev.Fingerprint},
		CI: ciEnvOf(ci),
	}
	if ci != nil {
		env.Alert.CI = ci.ID
	}
	m := s.getVM()
	defer s.vms.Put(m)

	copied := false
	for _, r := range s.enrich {
		if !s.match(m, r, env) {
			continue
		}
		if len(r.labels) > 0 {
			if !copied {
				ls := make(map[string]string, len(ev.Labels)+len(r.labels))
				maps.Copy(ls, ev.Labels)
				ev.Labels, copied = ls, true
				env.Alert.Labels = ls
			}
			maps.Copy(ev.Labels, r.labels)
		}
		if r.severity != "" {
			ev.Severity = r.severity
			env.Alert.Severity = r.severity
			adm.Routing.Severity = r.severity // sticks: later notifications do not change it
		}
		setIf(&adm.Routing.Priority, r.routing.Priority)
		setIf(&adm.Routing.Service, r.routing.Service)
		setIf(&adm.Routing.AssignmentGroup, r.routing.AssignmentGroup)
		setIf(&adm.Routing.Project, r.routing.Project)
		adm.Enriched = append(adm.Enriched, r.Name)
	}

	for _, r := range s.maint {
		if len(r.cis) > 0 && (ci == nil || !contains(r.cis, ci.ID)) {
			continue
		}
		until, ok := r.activeAt(now)
		if !ok || !s.match(m, r, env) {
			continue
		}
		if r.annotate {
			if adm.Maintenance == "" {
				adm.Maintenance = r.Name
			}
			continue
		}
		adm.Drop, adm.Rule = true, r.Name
		adm.Reason = "maintenance window " + r.Name + " (until " + until.UTC().Format(time.RFC3339) + ")"
		return adm
	}

	for _, r := range s.drop {
		if s.match(m, r, env) {
			adm.Drop, adm.Rule, adm.Reason = true, r.Name, r.reason
			if adm.Reason == "" {
				adm.Reason = "dropped by rule " + r.Name
			}
			return adm
		}
	}
	return adm
}

func setIf(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// activeAt reports whether a maintenance window is active at now, and
// until when.
func (r *rule) activeAt(now time.Time) (until time.Time, ok bool) {
	if r.sched == nil {
		return r.end, !now.Before(r.start) && now.Before(r.end)
	}
	if c := r.cache.Load(); c != nil && !now.Before(c.from) && now.Before(c.to) {
		return c.to, c.active
	}
	// The first activation after now-dur is the only one whose window can
	// hold now: earlier ones ended by now.
	var c span
	if t, ok := r.nextStart(now.Add(-r.dur)); !ok {
		c = span{from: now, to: now.Add(time.Hour)} // no activation within five years
	} else if t.After(now) {
		c = span{from: now, to: t}
	} else {
		c = span{from: t, to: t.Add(r.dur), active: true}
	}
	r.cache.Store(&c)
	return c.to, c.active
}

// nextStart is the first activation of a recurring window after after.
// The schedule runs on the wall clock of the window's time zone (sched
// has time.UTC standing in for it). An activation at a wall time that a
// DST change skips is shifted forward by the jump (02:30 on the night
// Europe/Berlin springs forward starts at 03:30 CEST); one at a wall time
// that occurs twice starts at its first occurrence.
func (r *rule) nextStart(after time.Time) (time.Time, bool) {
	// Start three hours of wall clock early: no DST change shifts the
	// clock by more, so every activation from there on that starts after
	// after is seen.
	w := wallClock(after, r.loc).Add(-3 * time.Hour)
	for range 1000 {
		if w = r.sched.Next(w); w.IsZero() {
			return time.Time{}, false
		}
		if t := inZone(w, r.loc); t.After(after) {
			return t, true
		}
	}
	return time.Time{}, false
}

// wallClock is t's wall clock in loc, written as a UTC time.
func wallClock(t time.Time, loc *time.Location) time.Time {
	y, mo, d := t.In(loc).Date()
	h, mi, s := t.In(loc).Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// inZone is the instant at which loc's wall clock shows w (a UTC time): in
// a DST gap, the instant the clock jumps past it; of two, the first.
func inZone(w time.Time, loc *time.Location) time.Time {
	y, mo, d := w.Date()
	h, mi, s := w.Clock()
	t := time.Date(y, mo, d, h, mi, s, w.Nanosecond(), loc)
	_, off := t.Zone()
	if _, before := t.Add(-3 * time.Hour).Zone(); before > off {
		if e := t.Add(-time.Duration(before-off) * time.Second); wallClock(e, loc).Equal(w) {
			return e
		}
	}
	return t
}

// Correlate reports the first correlate rule whose condition holds for the
// new alert a (bound to ci, or nil) and the open incident inc.
func (s *Set) Correlate(a *triage.Alert, ci *triage.CI, inc *triage.Incident) (string, bool) {
	if s == nil || len(s.correlate) == 0 {
		return "", false
	}
	env := &correlateEnv{Alert: alertEnvOf(a), CI: ciEnvOf(ci), Incident: incidentEnv{
		ID: int(inc.ID), Key: inc.Key, Title: inc.Title, Status: string(inc.Status), Severity: inc.Severity,
		Priority: inc.Priority, CI: inc.CI, Service: inc.Service, Labels: inc.Labels, AlertCount: inc.AlertCount,
		RootCause: inc.RootCause.CI,
	}}
	m := s.getVM()
	defer s.vms.Put(m)
	for _, r := range s.correlate {
		if s.match(m, r, env) {
			return r.Name, true
		}
	}
	return "", false
}

// CorrelateKeys lists, for each correlate rule in order, the labels its
// condition requires to be equal on the alert and the incident (see
// correlate.Rules). Shared: do not modify.
func (s *Set) CorrelateKeys() [][]string {
	if s == nil {
		return nil
	}
	keys := make([][]string, len(s.correlate))
	for i, r := range s.correlate {
		keys[i] = r.keys
	}
	return keys
}

// Group returns the first group rule whose condition holds for the new
// alert a (bound to ci, or nil). GroupRule.By is shared: do not modify it.
// A zero Window means the engine's window.
func (s *Set) Group(a *triage.Alert, ci *triage.CI) (correlate.GroupRule, bool) {
	if s == nil || len(s.group) == 0 {
		return correlate.GroupRule{}, false
	}
	env := &admitEnv{Alert: alertEnvOf(a), CI: ciEnvOf(ci)}
	m := s.getVM()
	defer s.vms.Put(m)
	for _, r := range s.group {
		if s.match(m, r, env) {
			return correlate.GroupRule{Name: r.Name, By: r.by, Window: r.window}, true
		}
	}
	return correlate.GroupRule{}, false
}

// LogEnv is the environment of log rules: one log record after template
// mining.
type LogEnv struct {
	Message    string            `expr:"message"`
	Level      string            `expr:"level"` // normalised: critical, error, warning, info or ""
	Template   string            `expr:"template"`
	TemplateID int               `expr:"template_id"`
	Labels     map[string]string `expr:"labels"`
	Service    string            `expr:"service"`
}

// LogMatch is a log rule that matched a record.
type LogMatch struct {
	Rule     string
	Severity string
}

// MatchLog returns every log rule whose condition holds for the record,
// in rule order.
func (s *Set) MatchLog(rec *LogEnv) []LogMatch {
	if s == nil || len(s.log) == 0 {
		return nil
	}
	m := s.getVM()
	defer s.vms.Put(m)
	var out []LogMatch
	for _, r := range s.log {
		if s.match(m, r, rec) {
			out = append(out, LogMatch{Rule: r.Name, Severity: r.severity})
		}
	}
	return out
}

// HasLogRules reports whether the set has log rules.
func (s *Set) HasLogRules() bool { return s != nil && len(s.log) > 0 }
