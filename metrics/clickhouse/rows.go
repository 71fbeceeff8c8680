package clickhouse

import "time"

// Row types, one per table. Times are stored as DateTime (whole seconds,
// UTC); a zero time.Time is stored as 0 (1970-01-01 00:00:00), which is how
// "none" is written for acknowledged_at and resolved_at.

// EventRow is one received event (a notification, duplicates included).
// Its id is (Received, Seq): Seq is the daemon's event sequence number.
type EventRow struct {
	Received    time.Time
	Time        time.Time
	Seq         uint64
	Source      string
	Fingerprint string
	Status      string
	Severity    string
	Alertname   string
	Service     string
	CI          string
	LabelKeys   []string // label names, sorted; LabelValues[i] is the value of LabelKeys[i]
	LabelValues []string
}

// AlertRow is a version of one alert of an incident; id (IncidentID,
// Fingerprint), the highest Version wins.
type AlertRow struct {
	IncidentID  uint64
	Fingerprint string
	Status      string
	Severity    string
	CI          string
	Service     string
	Alertname   string
	Count       uint64
	FirstSeen   time.Time
	LastSeen    time.Time
	Version     uint64
}

// IncidentRow is a version of an incident; id ID, the highest Version wins.
type IncidentRow struct {
	ID                uint64
	Key               string // INC-42
	Title             string
	Status            string
	Priority          string // P1..P5
	Severity          string
	CI                string
	Service           string
	AssignmentGroup   string
	AlertCount        uint64
	EventCount        uint64
	OpenedAt          time.Time
	AcknowledgedAt    time.Time // zero: not acknowledged
	ResolvedAt        time.Time // zero: not resolved
	ReopenCount       uint64
	RootCauseCI       string
	ProblemID         uint64 // 0: none
	UserImpactMinutes float64
	Version           uint64
}

// ChangeRow is one timeline entry of an incident; id (IncidentID, Seq).
type ChangeRow struct {
	IncidentID uint64
	Seq        uint64
	Time       time.Time
	Kind       string
	Actor      string
	Message    string
}

// SLAEventRow is one SLA event of an incident; id (IncidentID, Seq).
type SLAEventRow struct {
	IncidentID      uint64
	Seq             uint64
	Time            time.Time
	Policy          string
	Target          string // acknowledge, resolve
	Kind            string // warning, breach, met
	Fraction        float64
	BusinessSeconds uint64
	Priority        string
	Service         string
}

// ProblemRow is a version of a problem; id ID, the highest Version wins.
type ProblemRow struct {
	ID            uint64
	Key           string
	Title         string
	Status        string
	KnownError    bool
	Workaround    string
	RootCI        string
	Signature     string
	IncidentCount uint64
	OpenedAt      time.Time
	UpdatedAt     time.Time
	Version       uint64
}

// FeedbackRow is one piece of feedback on an incident; id (IncidentID, Seq).
type FeedbackRow struct {
	IncidentID uint64
	Seq        uint64
	Time       time.Time
	Score      uint8
	Comment    string
	Service    string
}

// Batch is what one Write sends: any number of rows per table.
type Batch struct {
	Events    []EventRow
	Alerts    []AlertRow
	Incidents []IncidentRow
	Changes   []ChangeRow
	SLAEvents []SLAEventRow
	Problems  []ProblemRow
	Feedback  []FeedbackRow
}

// Len is the number of rows in b.
func (b Batch) Len() int {
	return len(b.Events) + len(b.Alerts) + len(b.Incidents) + len(b.Changes) + len(b.SLAEvents) +
		len(b.Problems) + len(b.Feedback)
}

// dt maps the zero time to the DateTime 0 and drops sub-second precision.
func dt(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.Truncate(time.Second).UTC()
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// table describes how rows of one type become a native insert.
type table struct {
	name    string
	columns []string
	rows    int
	// row appends row i to a batch or block.
	row func(a appender, i int) error
}

// appender is what rows are appended to: a clickhouse-go batch.
type appender interface {
	Append(v ...any) error
}

// tables lists b's tables in write order (incidents before their changes, ...).
func (b *Batch) tables() []table {
	return []table{
		{name: "events", rows: len(b.Events),
			columns: []string{"received", "time", "seq", "source", "fingerprint", "status", "severity", "alertname", "service", "ci", "label_keys", "label_values"},
			row: func(a appender, i int) error {
				r := &b.Events[i]
				keys, values := r.LabelKeys, r.LabelValues
				if keys == nil {
					keys = []string{}
				}
				if values == nil {
					values = []string{}
				}
				return a.Append(dt(r.Received), dt(r.Time), r.Seq, r.Source, r.Fingerprint, r.Status, r.Severity, r.Alertname, r.Service, r.CI, keys, values)
			}},
		{name: "incidents", rows: len(b.Incidents),
			columns: []string{"id", "key", "title", "status", "priority", "severity", "ci", "service", "assignment_group", "alert_count", "event_count",
				"opened_at", "acknowledged_at", "resolved_at", "reopen_count", "root_cause_ci", "problem_id", "user_impact_minutes", "version"},
			row: func(a appender, i int) error {
				r := &b.Incidents[i]
				return a.Append(r.ID, r.Key, r.Title, r.Status, r.Priority, r.Severity, r.CI, r.Service, r.AssignmentGroup, r.AlertCount, r.EventCount,
					dt(r.OpenedAt), dt(r.AcknowledgedAt), dt(r.ResolvedAt), r.ReopenCount, r.RootCauseCI, r.ProblemID, r.UserImpactMinutes, r.Version)
			}},
		{name: "alerts", rows: len(b.Alerts),
			columns: []string{"incident_id", "fingerprint", "status", "severity", "ci", "service", "alertname", "count", "first_seen", "last_seen", "version"},
			row: func(a appender, i int) error {
				r := &b.Alerts[i]
				return a.Append(r.IncidentID, r.Fingerprint, r.Status, r.Severity, r.CI, r.Service, r.Alertname, r.Count, dt(r.FirstSeen), dt(r.LastSeen), r.Version)
			}},
		{name: "incident_changes", rows: len(b.Changes),
			columns: []string{"incident_id", "seq", "time", "kind", "actor", "message"},
			row: func(a appender, i int) error {
				r := &b.Changes[i]
				return a.Append(r.IncidentID, r.Seq, dt(r.Time), r.Kind, r.Actor, r.Message)
			}},
		{name: "sla_events", rows: len(b.SLAEvents),
			columns: []string{"incident_id", "seq", "time", "policy", "target", "kind", "fraction", "business_seconds", "priority", "service"},
			row: func(a appender, i int) error {
				r := &b.SLAEvents[i]
				return a.Append(r.IncidentID, r.Seq, dt(r.Time), r.Policy, r.Target, r.Kind, r.Fraction, r.BusinessSeconds, r.Priority, r.Service)
			}},
		{name: "problems", rows: len(b.Problems),
			columns: []string{"id", "key", "title", "status", "known_error", "workaround", "root_ci", "signature", "incident_count", "opened_at", "updated_at", "version"},
			row: func(a appender, i int) error {
				r := &b.Problems[i]
				return a.Append(r.ID, r.Key, r.Title, r.Status, b2u(r.KnownError), r.Workaround, r.RootCI, r.Signature, r.IncidentCount, dt(r.OpenedAt), dt(r.UpdatedAt), r.Version)
			}},
		{name: "feedback", rows: len(b.Feedback),
			columns: []string{"incident_id", "seq", "time", "score", "comment", "service"},
			row: func(a appender, i int) error {
				r := &b.Feedback[i]
				return a.Append(r.IncidentID, r.Seq, dt(r.Time), r.Score, r.Comment, r.Service)
			}},
	}
}
