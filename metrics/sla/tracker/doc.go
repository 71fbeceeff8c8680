// Package tracker puts SLA warnings and breaches on incident timelines as
// they happen, each exactly once.
//
// A Tracker follows the store's change feed the way the connectors' outbox
// does. At start it takes the open incidents and the feed position as of
// one instant (OpenSnapshot), reads each of those incidents in full and
// rebuilds from its record and timeline what SLA measurement needs: when
// it opened, was acknowledged and resolved, its priority and service (which
// select the policy, sla.Set.Select), its holds (on_hold/off_hold entries;
// the last may still be open) and the crossings already on its timeline.
// It then applies each later change. It keeps no file of its own: the
// timeline is its durable state.
//
// At each step (Step; Run steps every PollInterval, or sooner when a
// crossing is due) it evaluates the incidents whose next crossing
// (sla.NextEvent) has come or that changed, and writes each warning or
// breach reached and not yet recorded as a timeline entry (kind
// sla_warning or sla_breach, actor "sla") through the Recorder. Met
// targets write nothing.
//
// # Exactly once
//
// A crossing is identified by its target and threshold (a warning's
// fraction of the budget, 1 for the breach), not by its instant or policy:
// those move when the incident changes. It is recorded when an entry by
// actor "sla" whose message starts with the fixed prefix FormatMessage
// writes exists for that target at that threshold or a higher one. The
// tracker marks a crossing recorded in memory as soon as Note returns nil;
// after a restart the rebuild finds it on the timeline. A Note that fails
// is retried at the next step; when the Recorder also has
// Sync(context.Context) error (correlate.Service does), each step first
// syncs, so that a Note that failed after all reached the timeline is
// seen in the feed before it is retried. A crossing reached while the
// tracker was not running is recorded when it next runs, with the instant
// it was reached in the message.
//
// When several thresholds of one target are reached at once (the tracker
// was down, or a priority change brought in a tighter policy) only the
// highest is written: a breach says more than the warnings before it, and
// a warning below a recorded threshold is never written afterwards.
//
// # Decisions
//
// Policy changes: the policy is selected again whenever the incident's
// priority or service may have changed (it was read again after an
// opened, alert_added, severity_changed, merged or reopened entry) and
// measures the incident's whole life from opened_at, as the KPI reports
// do. Crossings already recorded stay recorded; thresholds the new policy
// has already passed are written at once (the highest per target).
//
// Reopening: the resolve clock resumes where it stopped. The time between
// the resolution and the reopening counts as a pause of both clocks, so
// that a reopened incident is not charged for the time it was considered
// fixed, and recorded crossings are not repeated. An incident resolved
// without having been acknowledged keeps the resolution as its
// acknowledgement (resolving acknowledges, as in package sla): its
// acknowledge target does not run again.
//
// Resolution stops the clocks; the incident is evaluated once more (a
// breach reached just before the resolution is still written) and then
// forgotten. An incident merged into another is forgotten: the surviving
// incident, whose opened_at is the earlier of both, carries the SLA.
//
// Holds: an on_hold entry pauses both clocks until the off_hold entry; a
// resolution ends a hold.
package tracker
