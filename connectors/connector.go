// Package connectors delivers incident changes to outside systems (Jira,
// generic webhooks) through a durable outbox.
//
// The correlation engine writes every change of every incident as a
// timeline entry, in order, into its store (correlate.Store.Changes). The
// Outbox follows that feed with one cursor per connector and copies each
// change into the connector's queue, cursor and queue in one transaction,
// so a change is queued exactly once however the process stops. Workers
// deliver each incident's queue in order, one change at a time, and remove
// a change only once the connector has done it: a crash repeats at most the
// change in flight, which connectors make idempotent (Jira searches for the
// incident's issue before it creates one). Failures that can succeed later
// (timeouts, 5xx, 429) are retried with backoff, honouring Retry-After, and
// hold back only that incident; failures that cannot (most 4xx) are
// recorded on the incident's timeline with the remote message.
package connectors

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/triage-dev/triage"
)

// Connector is one outbound system.
type Connector interface {
	// Name identifies the connector in the outbox, metrics and timelines;
	// it must stay the same across restarts.
	Name() string
	// Deliver does what one change asks of the outside system. It may
	// change d.State, which is saved whether it returns an error or not
	// (so that an intent recorded before a remote call survives a crash).
	// A nil error removes the change from the queue.
	Deliver(ctx context.Context, d *Delivery) error
}

// Filter is implemented by connectors that ignore some changes: those are
// not queued at all.
type Filter interface {
	Wants(triage.TimelineEntry) bool
}

// Delivery is one change for a connector.
type Delivery struct {
	// Incident is the incident as it is now (which may be later than the
	// change), read in full: alerts, explanation and timeline.
	Incident *triage.Incident
	// Change is the timeline entry to deliver. A backfilled incident (open
	// when the connector was first enabled) gets a synthetic opened entry
	// with Seq 0.
	Change triage.TimelineEntry
	// State is the connector's durable record of the incident.
	State *State
	// Save makes State durable now, before a remote call whose effect
	// must not be repeated blindly after a crash (the intent to create).
	Save func() error
}

// State is what a connector remembers of one incident between deliveries.
type State struct {
	// Ticket is the incident's remote object once it exists; the outbox
	// records it on the incident.
	Ticket *triage.Ticket `json:"ticket,omitempty"`
	// RemoteID is the remote system's internal id of the ticket.
	RemoteID string `json:"remote_id,omitempty"`
	// Intent is when a create started that is not known to have finished:
	// after a crash, the connector searches before it creates again.
	Intent time.Time `json:"intent,omitzero"`
	// Covered is the last change seq the ticket's creation already showed
	// (its description is built from the incident as it was then).
	Covered uint64 `json:"covered,omitempty"`
	// Priority and Status are the last incident priority and status the
	// remote side was brought to.
	Priority string `json:"priority,omitempty"`
	Status   string `json:"status,omitempty"`
	// Failed is a permanent failure to create the ticket, under the
	// connector configuration whose hash is FailedConfig: the ticket is
	// not attempted again until the configuration changes.
	Failed       string `json:"failed,omitempty"`
	FailedConfig string `json:"failed_config,omitempty"`
	// InFlight is the change whose remote effect (a comment) may exist
	// although its delivery did not finish: the connector looks for it
	// before it repeats it.
	InFlight uint64 `json:"in_flight,omitempty"`
	// Commented is the last change whose comment was posted: a delivery
	// repeated after a later step failed does not post it again.
	Commented uint64 `json:"commented,omitempty"`
	// Target is where the pending create goes (a Jira project): while an
	// Intent is outstanding the search looks there, even if the incident's
	// route has changed since.
	Target string `json:"target,omitempty"`
}

// Error classifies a delivery failure once, where the remote answer is
// known.
type Error struct {
	// Retryable failures are tried again with backoff; the others are
	// recorded on the incident and the change is dropped.
	Retryable bool
	// RetryAfter is the wait the remote system asked for (429, 503).
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Permanent marks err as a failure that retrying cannot fix.
func Permanent(err error) error { return &Error{Err: err} }

// Retryable marks err as a failure worth retrying, after at least after.
func Retryable(err error, after time.Duration) error {
	return &Error{Retryable: true, RetryAfter: after, Err: err}
}

// Classify decides, from an HTTP answer, whether a failure is retryable:
// no answer (network errors, timeouts), 401 and 403 (credentials expired,
// rotated or not yet granted: fixed outside, and the work must wait, not be
// dropped), 408, 425, 429 and 5xx are; other 4xx are not. Retry-After (seconds or an HTTP date) is honoured. A nil
// err with a 2xx status is no failure: nil.
func Classify(resp *http.Response, err error, now time.Time) error {
	if resp == nil {
		if err == nil {
			return nil
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
			return Retryable(err, 0)
		}
		return Retryable(err, 0) // no answer at all: the request may be fine
	}
	code := resp.StatusCode
	if code >= 200 && code < 300 && err == nil {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("HTTP %d", code)
	}
	switch {
	case code == http.StatusUnauthorized, code == http.StatusForbidden,
		code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		return Retryable(err, RetryAfter(resp.Header, now))
	case code >= 300:
		return Permanent(err)
	}
	return Retryable(err, 0) // a 2xx with an unreadable body
}

// RetryAfter reads a Retry-After header: seconds or an HTTP date; 0 when
// absent or unreadable. It is capped at an hour.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Hour)
}
