// Package kpi computes the incident KPIs managers read: MTTA, MTTR, MTBF
// per service, incident volume, compression and noise reduction, SLA
// compliance, reopen rate and the XLA figures (user-impact minutes,
// satisfaction), over a time range, from the incident records alone. The
// same definitions are used by the ClickHouse queries behind the Grafana
// dashboards (see deploy/grafana/README.md), so both agree.
package kpi

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/triage-dev/triage"
)

// Options tune the XLA side.
type Options struct {
	// Weights give each service's user-impact weight (default 1): user
	// impact minutes are an incident's open minutes times the weight.
	Weights map[string]float64
	// Targets are XLA targets per service.
	Targets map[string]Target
	// SLA tells whether SLA policies are configured; without them SLA
	// compliance is not computed.
	SLA bool
}

// Target is an XLA target: at most MaxImpactMinutes of user impact and at
// least MinSatisfaction average score in the range (0: no target).
type Target struct {
	MaxImpactMinutes float64 `json:"max_impact_minutes,omitempty"`
	MinSatisfaction  float64 `json:"min_satisfaction,omitempty"`
}

// Report is the KPIs of one range. Averages and ratios are null when
// there is nothing to average.
type Report struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Opened counts incidents opened in the range; Acknowledged and
	// Resolved those acknowledged or resolved in it.
	Opened       int `json:"opened"`
	Acknowledged int `json:"acknowledged"`
	Resolved     int `json:"resolved"`
	// MTTA: mean of acknowledged_at - opened_at over incidents
	// acknowledged in the range; MTTR: of resolved_at - opened_at over
	// incidents resolved in it. Seconds.
	MTTASeconds *float64 `json:"mtta_seconds"`
	MTTRSeconds *float64 `json:"mttr_seconds"`
	// Events (notifications, duplicates included) and Alerts (unique) of
	// the incidents opened in the range.
	Events int64 `json:"events"`
	Alerts int64 `json:"alerts"`
	// AlertCompression is 1 - opened/alerts, EventCompression (the noise
	// reduction) 1 - opened/events.
	AlertCompression *float64 `json:"alert_compression"`
	EventCompression *float64 `json:"event_compression"`
	// ReopenRate is the share of incidents opened in the range that
	// reopened.
	ReopenRate *float64 `json:"reopen_rate"`
	// SLACompliance is the share of incidents resolved in the range that
	// breached no SLA target; SLABreached counts the others.
	SLACompliance *float64 `json:"sla_compliance"`
	SLABreached   int      `json:"sla_breached"`
	// UserImpactMinutes sums, over incidents, the minutes each was open
	// within the range times its service's weight.
	UserImpactMinutes float64 `json:"user_impact_minutes"`
	// Satisfaction is the mean feedback score given in the range.
	Satisfaction  *float64 `json:"satisfaction"`
	FeedbackCount int      `json:"feedback_count"`
	// Problems are filled by the caller from the problem tracker.
	Problems *Problems      `json:"problems,omitempty"`
	Services []ServiceStats `json:"services"`
}

// Problems counts problems.
type Problems struct {
	Open        int `json:"open"`
	KnownErrors int `json:"known_errors"`
	Opened      int `json:"opened"`
}

// ServiceStats are the KPIs of one service ("" for incidents without one).
type ServiceStats struct {
	Service           string   `json:"service"`
	Opened            int      `json:"opened"`
	MTTASeconds       *float64 `json:"mtta_seconds"`
	MTTRSeconds       *float64 `json:"mttr_seconds"`
	MTBFSeconds       *float64 `json:"mtbf_seconds"` // mean time between the openings of its incidents in the range
	SLACompliance     *float64 `json:"sla_compliance"`
	UserImpactMinutes float64  `json:"user_impact_minutes"`
	Satisfaction      *float64 `json:"satisfaction"`
	// XLAMet is whether the service met its XLA target; null without one.
	XLAMet *bool `json:"xla_met"`
}

type acc struct {
	opened, acked, resolved, breachedOK, breached, reopened, feedback int
	ackSum, resSum, fbSum, impact                                     float64
	events, alerts                                                    int64
	openings                                                          []time.Time
}

func in(t, from, to time.Time) bool { return !t.Before(from) && t.Before(to) }

func (a *acc) add(inc *triage.Incident, from, to, now time.Time, weight float64) {
	if in(inc.OpenedAt, from, to) {
		a.opened++
		a.events += inc.EventCount
		a.alerts += int64(inc.AlertCount)
		a.openings = append(a.openings, inc.OpenedAt)
		if inc.ReopenCount > 0 {
			a.reopened++
		}
	}
	if t := inc.AcknowledgedAt; t != nil && in(*t, from, to) {
		a.acked++
		a.ackSum += t.Sub(inc.OpenedAt).Seconds()
	}
	if t := inc.ResolvedAt; t != nil && in(*t, from, to) {
		a.resolved++
		a.resSum += t.Sub(inc.OpenedAt).Seconds()
		if inc.SLABreaches > 0 {
			a.breached++
		} else {
			a.breachedOK++
		}
	}
	if f := inc.Feedback; f != nil && in(f.At, from, to) {
		a.feedback++
		a.fbSum += float64(f.Score)
	}
	end := now
	if inc.ResolvedAt != nil {
		end = *inc.ResolvedAt
	}
	start := inc.OpenedAt
	if start.Before(from) {
		start = from
	}
	if end.After(to) {
		end = to
	}
	if end.After(start) {
		a.impact += end.Sub(start).Minutes() * weight
	}
}

func ratio(n, d float64) *float64 {
	if d == 0 {
		return nil
	}
	v := n / d
	return &v
}

func (a *acc) mtbf() *float64 {
	if len(a.openings) < 2 {
		return nil
	}
	slices.SortFunc(a.openings, func(x, y time.Time) int { return x.Compare(y) })
	span := a.openings[len(a.openings)-1].Sub(a.openings[0]).Seconds()
	return ratio(span, float64(len(a.openings)-1))
}

// record is the part of an incident's JSON record the KPIs read: decoding
// only it is several times faster than decoding whole incidents.
type record struct {
	Service        string           `json:"service"`
	EventCount     int64            `json:"event_count"`
	AlertCount     int              `json:"alert_count"`
	OpenedAt       time.Time        `json:"opened_at"`
	AcknowledgedAt *time.Time       `json:"acknowledged_at"`
	ResolvedAt     *time.Time       `json:"resolved_at"`
	ReopenCount    int              `json:"reopen_count"`
	SLABreaches    int              `json:"sla_breaches"`
	Feedback       *triage.Feedback `json:"feedback"`
	MergedInto     *uint64          `json:"merged_into"`
}

// ComputeJSON is Compute over incidents' JSON records (see
// correlate.Store.EachIncidentJSON).
func ComputeJSON(each func(func([]byte) error) error, from, to, now time.Time, o Options) (*Report, error) {
	return Compute(func(fn func(*triage.Incident) error) error {
		var inc triage.Incident
		return each(func(b []byte) error {
			var r record
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("decoding an incident: %w", err)
			}
			inc = triage.Incident{Service: r.Service, EventCount: r.EventCount, AlertCount: r.AlertCount, OpenedAt: r.OpenedAt,
				AcknowledgedAt: r.AcknowledgedAt, ResolvedAt: r.ResolvedAt, ReopenCount: r.ReopenCount,
				SLABreaches: r.SLABreaches, Feedback: r.Feedback, MergedInto: r.MergedInto}
			return fn(&inc)
		})
	}, from, to, now, o)
}

// Compute walks every incident once (each calls fn with each incident)
// and returns the KPIs of [from, to). now closes the impact of incidents
// still open.
func Compute(each func(func(*triage.Incident) error) error, from, to, now time.Time, o Options) (*Report, error) {
	var all acc
	per := map[string]*acc{}
	err := each(func(inc *triage.Incident) error {
		if inc.MergedInto != nil {
			return nil // its alerts count in the incident it was merged into
		}
		w := 1.0
		if v, ok := o.Weights[inc.Service]; ok {
			w = v
		}
		all.add(inc, from, to, now, w)
		s := per[inc.Service]
		if s == nil {
			s = &acc{}
			per[inc.Service] = s
		}
		s.add(inc, from, to, now, w)
		return nil
	})
	if err != nil {
		return nil, err
	}
	r := &Report{From: from, To: to, Opened: all.opened, Acknowledged: all.acked, Resolved: all.resolved,
		MTTASeconds: ratio(all.ackSum, float64(all.acked)), MTTRSeconds: ratio(all.resSum, float64(all.resolved)),
		Events: all.events, Alerts: all.alerts, ReopenRate: ratio(float64(all.reopened), float64(all.opened)),
		UserImpactMinutes: round(all.impact), Satisfaction: ratio(all.fbSum, float64(all.feedback)), FeedbackCount: all.feedback,
		Services: []ServiceStats{}}
	if all.alerts > 0 {
		r.AlertCompression = ratio(float64(all.alerts-int64(all.opened)), float64(all.alerts))
	}
	if all.events > 0 {
		r.EventCompression = ratio(float64(all.events-int64(all.opened)), float64(all.events))
	}
	if o.SLA {
		r.SLACompliance = ratio(float64(all.breachedOK), float64(all.resolved))
		r.SLABreached = all.breached
	}
	for svc, a := range per {
		if a.opened == 0 && a.acked == 0 && a.resolved == 0 && a.impact == 0 && a.feedback == 0 {
			continue
		}
		st := ServiceStats{Service: svc, Opened: a.opened, MTTASeconds: ratio(a.ackSum, float64(a.acked)),
			MTTRSeconds: ratio(a.resSum, float64(a.resolved)), MTBFSeconds: a.mtbf(), UserImpactMinutes: round(a.impact),
			Satisfaction: ratio(a.fbSum, float64(a.feedback))}
		if o.SLA {
			st.SLACompliance = ratio(float64(a.breachedOK), float64(a.resolved))
		}
		if t, ok := o.Targets[svc]; ok {
			met := (t.MaxImpactMinutes == 0 || a.impact <= t.MaxImpactMinutes) &&
				(t.MinSatisfaction == 0 || (a.feedback > 0 && a.fbSum/float64(a.feedback) >= t.MinSatisfaction))
			st.XLAMet = &met
		}
		r.Services = append(r.Services, st)
	}
	slices.SortFunc(r.Services, func(a, b ServiceStats) int {
		if c := b.Opened - a.Opened; c != 0 {
			return c
		}
		return strings.Compare(a.Service, b.Service)
	})
	return r, nil
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }
