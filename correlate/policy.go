package correlate

import (
	"time"

	"github.com/triage-dev/triage"
)

// Rules are the SRE-written rules the Engine consults. The rules package
// implements them with compiled expr programs; every method must be
// deterministic (time comes in as now) and must not keep the pointers it is
// given.
type Rules interface {
	// Admit runs when an event would create an alert the engine does not
	// hold (its first notification, or a firing after its incident was
	// archived). ci is the CI the alert bound to, or nil. Admit may set
	// labels and severity on ev (ev.Labels is owned by the engine from
	// then on); its answer says whether to drop the event and what routing
	// enrich rules set.
	Admit(ev *triage.Event, ci *triage.CI, now time.Time) Admission
	// Correlate reports the first correlate rule whose condition links a
	// new alert to an open incident.
	Correlate(a *triage.Alert, ci *triage.CI, inc *triage.Incident) (rule string, ok bool)
	// CorrelateKeys lists, for each correlate rule, the labels X its
	// condition requires equal on both sides (alert.labels.X ==
	// incident.labels.X as a top-level && term); none when it has no such
	// term. Empty when there are no correlate rules. With keys for every
	// rule, the correlator tries them only against incidents whose common
	// labels have the alert's values, instead of scanning open incidents.
	CorrelateKeys() [][]string
	// Group returns the first group rule that applies to a new alert.
	Group(a *triage.Alert, ci *triage.CI) (GroupRule, bool)
}

// Admission is what the rules decided about a new alert.
type Admission struct {
	// Drop is set when a drop rule or a suppressing maintenance window
	// matched: the event is counted (by Rule) and otherwise ignored.
	Drop bool
	// Rule names the rule that dropped the event, or the maintenance
	// window that annotated it.
	Rule   string
	Reason string
	// Maintenance names an annotating maintenance window the alert fired in.
	Maintenance string
	// Routing is what enrich rules set.
	Routing triage.Routing
	// Enriched lists the enrich rules that applied, for the explanation.
	Enriched []string
}

// GroupRule is a group rule's grouping: alerts with equal values of By
// join one incident while its last notification is within Window.
type GroupRule struct {
	Name   string
	By     []string
	Window time.Duration
}
