// Package triage holds the domain vocabulary shared by every other package:
// events as they arrive, alerts as they are deduplicated, and incidents as
// they are correlated. It imports no other package of this module.
package triage

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
)

// AlertStatus is the state of one alert as its sender reports it.
type AlertStatus string

// Alert states.
const (
	AlertFiring   AlertStatus = "firing"
	AlertResolved AlertStatus = "resolved"
)

// IncidentStatus is where an incident is in its lifecycle.
type IncidentStatus string

// Incident states: open → acknowledged → resolved, and back to open on a re-fire.
const (
	IncidentOpen         IncidentStatus = "open"
	IncidentAcknowledged IncidentStatus = "acknowledged"
	IncidentResolved     IncidentStatus = "resolved"
)

// Severities, from most to least severe. Others are normalised by NormalizeSeverity.
const (
	SeverityCritical = "critical"
	SeverityError    = "error"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Event is one notification about one alert, from any source. It is the unit
// of ingestion: webhooks, the events API and Kafka all produce Events.
type Event struct {
	// Source names the sender kind, e.g. "alertmanager", "prometheus", "api".
	Source string `json:"source,omitempty"`
	// Fingerprint identifies the alert; computed from Labels when absent.
	Fingerprint string            `json:"fingerprint,omitempty"`
	Status      AlertStatus       `json:"status,omitempty"`
	Severity    string            `json:"severity,omitempty"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"starts_at,omitzero"`
	EndsAt      time.Time         `json:"ends_at,omitzero"`
	// Time is when the notification was sent; the receive time when absent.
	Time         time.Time `json:"time,omitzero"`
	GeneratorURL string    `json:"generator_url,omitempty"`
}

// Times an event may carry: state stores them as Unix nanoseconds.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// ErrInvalidEvent is wrapped by every error Normalize returns.
var ErrInvalidEvent = errors.New("invalid event")

// Limits on one event, so that a hostile sender cannot bloat state.
const (
	MaxLabels          = 64
	MaxLabelBytes      = 4096
	MaxAnnotations     = 64
	MaxAnnotationBytes = 64 << 10 // all annotations of one event together
	MaxFieldBytes      = 4096     // source, generator_url
)

// Normalize validates e and fills its defaults: fingerprint from labels,
// status from ends_at, severity from the severity label, time from now.
// The error names the offending field.
func (e *Event) Normalize(now time.Time) error {
	if len(e.Labels) == 0 {
		return fmt.Errorf("%w: labels: at least one label is required", ErrInvalidEvent)
	}
	if len(e.Labels) > MaxLabels {
		return fmt.Errorf("%w: labels: %d labels, at most %d allowed", ErrInvalidEvent, len(e.Labels), MaxLabels)
	}
	for k, v := range e.Labels {
		if !validLabelName(k) {
			return fmt.Errorf("%w: labels: invalid label name %q", ErrInvalidEvent, k)
		}
		if len(v) > MaxLabelBytes || !utf8.ValidString(v) {
			return fmt.Errorf("%w: labels: value of %q is not valid UTF-8 of at most %d bytes", ErrInvalidEvent, k, MaxLabelBytes)
		}
	}
	size := 0
	for k, v := range e.Annotations {
		size += len(k) + len(v)
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: annotations: %q is not valid UTF-8", ErrInvalidEvent, k)
		}
	}
	if len(e.Annotations) > MaxAnnotations || size > MaxAnnotationBytes {
		return fmt.Errorf("%w: annotations: %d annotations of %d bytes, at most %d of %d bytes allowed",
			ErrInvalidEvent, len(e.Annotations), size, MaxAnnotations, MaxAnnotationBytes)
	}
	if len(e.Source) > MaxFieldBytes || len(e.GeneratorURL) > MaxFieldBytes {
		return fmt.Errorf("%w: source and generator_url: at most %d bytes", ErrInvalidEvent, MaxFieldBytes)
	}
	switch e.Status {
	case AlertFiring, AlertResolved:
	case "":
		e.Status = AlertFiring
		if !e.EndsAt.IsZero() && !e.EndsAt.After(now) {
			e.Status = AlertResolved
		}
	default:
		return fmt.Errorf("%w: status: %q is not firing or resolved", ErrInvalidEvent, e.Status)
	}
	if e.Severity == "" {
		e.Severity = e.Labels["severity"]
	}
	e.Severity = NormalizeSeverity(e.Severity)
	if e.Fingerprint == "" {
		e.Fingerprint = Fingerprint(e.Labels)
	} else if len(e.Fingerprint) > 128 || !utf8.ValidString(e.Fingerprint) {
		return fmt.Errorf("%w: fingerprint: longer than 128 bytes or not UTF-8", ErrInvalidEvent)
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"starts_at", e.StartsAt}, {"ends_at", e.EndsAt}, {"time", e.Time}} {
		if !f.t.IsZero() && (f.t.Before(minTime) || f.t.After(maxTime)) {
			return fmt.Errorf("%w: %s: %s is outside the years 1970 to 2200", ErrInvalidEvent, f.name, f.t.Format(time.RFC3339))
		}
	}
	// A missing StartsAt stays zero: the engine then takes the receive time
	// for a new alert and does not mistake a repeat for a new occurrence.
	if !e.EndsAt.IsZero() && !e.StartsAt.IsZero() && e.EndsAt.Before(e.StartsAt) {
		return fmt.Errorf("%w: ends_at %s is before starts_at %s", ErrInvalidEvent,
			e.EndsAt.Format(time.RFC3339), e.StartsAt.Format(time.RFC3339))
	}
	return nil
}

// validLabelName accepts what Prometheus 3 and Alertmanager 0.28+ accept:
// any non-empty UTF-8 name (e.g. service.name), up to 256 bytes.
func validLabelName(s string) bool {
	return s != "" && len(s) <= 256 && utf8.ValidString(s)
}

// Fingerprint is the hash Alertmanager computes over an alert's labels
// (model.LabelSet.Fingerprint), in the same 16-hex-digit form, so that
// fingerprints from Alertmanager webhooks and computed ones agree.
func Fingerprint(labels map[string]string) string {
	// model.LabelSet.Fingerprint, without copying the labels into a
	// LabelSet: FNV-1a over the names in order, each name and value
	// followed by model.SeparatorByte, printed as 16 hex digits.
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	var buf [32]string // most label sets are smaller: no allocation for the names
	names := buf[:0]
	for k := range labels {
		names = append(names, k)
	}
	slices.Sort(names)
	h := uint64(offset64)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime64
		}
		h ^= uint64(model.SeparatorByte)
		h *= prime64
	}
	for _, k := range names {
		add(k)
		add(labels[k])
	}
	var out [16]byte
	const hexDigits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		out[i] = hexDigits[h&0xf]
		h >>= 4
	}
	return string(out[:])
}

// NormalizeSeverity maps common severity words to critical, error, warning or
// info; anything unrecognised becomes warning, and empty stays empty.
func NormalizeSeverity(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return ""
	case "critical", "crit", "page", "fatal", "emergency", "alert", "disaster", "p1", "high":
		return SeverityCritical
	case "error", "err", "major", "p2":
		return SeverityError
	case "info", "informational", "notice", "low", "none", "debug", "ok", "p4", "p5":
		return SeverityInfo
	default:
		return SeverityWarning
	}
}

// SeverityRank orders severities: higher is more severe.
func SeverityRank(s string) int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityError:
		return 3
	case SeverityWarning:
		return 2
	case SeverityInfo:
		return 1
	}
	return 0
}

// Alert is one deduplicated alert inside an incident.
type Alert struct {
	Fingerprint  string            `json:"fingerprint"`
	IncidentID   uint64            `json:"incident_id"`
	Source       string            `json:"source,omitempty"`
	Status       AlertStatus       `json:"status"`
	Severity     string            `json:"severity,omitempty"`
	CI           string            `json:"ci,omitempty"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Count        int64             `json:"count"`
	StartsAt     time.Time         `json:"starts_at"`
	EndsAt       time.Time         `json:"ends_at,omitzero"`
	FirstSeen    time.Time         `json:"first_seen"`
	LastSeen     time.Time         `json:"last_seen"`
	GeneratorURL string            `json:"generator_url,omitempty"`
	// Expired is set when the alert resolved because its ends_at passed
	// without a new notification, not by a resolved notification.
	Expired bool `json:"expired,omitempty"`
	// Flapping is set while the alert changes state too often; its changes
	// then do not resolve or reopen its incident.
	Flapping bool `json:"flapping,omitempty"`
	// Binding is how the alert was bound to a CI of the CMDB; nil when no
	// CI matched (CI then holds the raw label value, if any).
	Binding *Binding `json:"binding,omitempty"`
	// Routing is what enrich rules set on the alert; nil when none did.
	Routing *Routing `json:"routing,omitempty"`
	// Maintenance names the maintenance window the alert fired in, when the
	// window annotates rather than suppresses.
	Maintenance string `json:"maintenance,omitempty"`
	// Joined says why the alert joined its incident.
	Joined Explanation `json:"joined"`
}

// Explanation records why one alert is part of an incident.
type Explanation struct {
	Fingerprint string    `json:"fingerprint"`
	Reason      string    `json:"reason"`
	Rule        string    `json:"rule,omitempty"`
	GroupKey    string    `json:"group_key,omitempty"`
	Path        []string  `json:"path,omitempty"`
	At          time.Time `json:"at"`
}

// Feedback is a satisfaction score (1-5) on how an incident was handled.
type Feedback struct {
	Score   int       `json:"score"`
	Comment string    `json:"comment,omitempty"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
}

// RootCause names the configuration item most likely at fault.
type RootCause struct {
	CI     string `json:"ci"`
	Reason string `json:"reason"`
}

// Ticket is the incident's issue in an external ticket system.
type Ticket struct {
	System string `json:"system"`
	Key    string `json:"key"`
	URL    string `json:"url"`
}

// TimelineEntry is one change in an incident's life.
type TimelineEntry struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Kind        string    `json:"kind"`
	Actor       string    `json:"actor"`
	Message     string    `json:"message,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
}

// Timeline entry kinds.
const (
	KindOpened          = "opened"
	KindAlertAdded      = "alert_added"
	KindAlertResolved   = "alert_resolved"
	KindAlertRefired    = "alert_refired"
	KindSeverityChanged = "severity_changed"
	KindAcknowledged    = "acknowledged"
	KindResolved        = "resolved"
	KindReopened        = "reopened"
	KindComment         = "comment"
	KindRootCause       = "root_cause"
	KindMerged          = "merged"
	KindFlapping        = "flapping"
	KindHeld            = "held"
	KindReleased        = "released"
	// KindTicket records the incident's issue in a ticket system.
	KindTicket = "ticket"
	// KindAssigned records an assignment made in a ticket system.
	KindAssigned = "assigned"
	// KindConnectorError records a change a connector could not deliver,
	// with the remote system's message.
	KindConnectorError = "connector_error"
	// KindProblem records the incident's link to a problem.
	KindProblem = "problem"
	// KindOnHold and KindOffHold put an incident on hold and take it off:
	// SLA clocks stop while it is on hold.
	KindOnHold  = "on_hold"
	KindOffHold = "off_hold"
	// KindFeedback records a satisfaction score (1-5) with a comment.
	KindFeedback = "feedback"
	// KindSLAWarning and KindSLABreach record an SLA target crossing a
	// warning threshold or its deadline.
	KindSLAWarning = "sla_warning"
	KindSLABreach  = "sla_breach"
	// KindPriorityChanged records the priority matrix raising a priority.
	KindPriorityChanged = "priority_changed"
)

// ProblemKey is the human form of a problem id, e.g. PRB-7.
func ProblemKey(id uint64) string { return "PRB-" + strconv.FormatUint(id, 10) }

// ActorSystem is the actor of changes Triage makes on its own.
const ActorSystem = "triage"

// Incident is a group of alerts that share one cause, with its lifecycle.
type Incident struct {
	ID       uint64         `json:"id"`
	Key      string         `json:"key"`
	Title    string         `json:"title"`
	Status   IncidentStatus `json:"status"`
	Priority string         `json:"priority"`
	// PriorityReason says how the priority matrix chose the priority
	// (impact × urgency); empty without a matrix.
	PriorityReason string            `json:"priority_reason,omitempty"`
	Severity       string            `json:"severity"`
	CI             string            `json:"ci"`
	Service        string            `json:"service"`
	GroupKey       string            `json:"group_key"`
	Labels         map[string]string `json:"labels"`
	AlertCount     int               `json:"alert_count"`
	FiringCount    int               `json:"firing_count"`
	EventCount     int64             `json:"event_count"`
	OpenedAt       time.Time         `json:"opened_at"`
	AcknowledgedAt *time.Time        `json:"acknowledged_at"`
	ResolvedAt     *time.Time        `json:"resolved_at"`
	// AutoResolveAt is when the incident resolves on its own, set while all
	// its alerts have resolved and resolve_after has not yet passed.
	AutoResolveAt *time.Time `json:"auto_resolve_at,omitempty"`
	UpdatedAt     time.Time  `json:"updated_at"`
	ReopenCount   int        `json:"reopen_count"`
	RootCause     RootCause  `json:"root_cause"`
	Ticket        *Ticket    `json:"ticket"`
	ProblemID     *uint64    `json:"problem_id"`
	// AssignmentGroup and Project come from enrich rules (Project is the
	// Jira project key of the incident's ticket).
	AssignmentGroup string `json:"assignment_group,omitempty"`
	Project         string `json:"jira_project,omitempty"`
	// Held is set while the incident is below the minimum number of alerts
	// (correlation.min_alerts): it is recorded but not notified.
	Held bool `json:"held,omitempty"`
	// OnHold is set while someone put the incident on hold (waiting for a
	// customer or a vendor): its SLA clocks stop.
	OnHold bool `json:"on_hold,omitempty"`
	// SLABreaches counts the SLA targets the incident breached.
	SLABreaches int `json:"sla_breaches,omitempty"`
	// Feedback is the last satisfaction score given on the incident.
	Feedback *Feedback `json:"feedback,omitempty"`
	// MergedInto is set on an incident merged into another one when a later
	// alert showed both had one cause; Merged lists those merged into this one.
	MergedInto *uint64  `json:"merged_into,omitempty"`
	Merged     []uint64 `json:"merged,omitempty"`
	// Alerts, Explanation and Timeline are filled when one incident is read
	// in full; lists of incidents leave them empty.
	Alerts      []Alert         `json:"alerts"`
	Explanation []Explanation   `json:"explanation"`
	Timeline    []TimelineEntry `json:"timeline"`
}

// IncidentKey is the human form of an incident id, e.g. INC-42.
func IncidentKey(id uint64) string { return "INC-" + strconv.FormatUint(id, 10) }

// ParseIncidentRef accepts an incident id ("42") or key ("INC-42").
func ParseIncidentRef(s string) (uint64, error) {
	num := strings.TrimPrefix(strings.ToUpper(s), "INC-")
	id, err := strconv.ParseUint(num, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("incident reference %q: want a number or INC-<number>", s)
	}
	return id, nil
}

// PriorityForSeverity is the default priority of an incident of the given
// severity, until an impact × urgency matrix replaces it.
func PriorityForSeverity(sev string) string {
	switch sev {
	case SeverityCritical:
		return "P1"
	case SeverityError:
		return "P2"
	case SeverityWarning:
		return "P3"
	case SeverityInfo:
		return "P4"
	}
	return "P5"
}
