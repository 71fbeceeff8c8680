// Package webhook is a generic outbound connector: each incident change is
// POSTed as JSON to a URL, signed with HMAC-SHA256, through the same
// outbox as Jira (in order per incident, retried with backoff, 4xx
// recorded on the incident).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/connectors"
)

// Options configure one webhook.
type Options struct {
	// Name identifies it in the outbox; it must stay the same.
	Name string
	URL  string
	// Secret signs each body: X-Triage-Signature: sha256=<hex HMAC>.
	Secret string
	// When, an expr condition on `incident`, limits the incidents sent.
	When string
	// Headers are added to every request (e.g. an API key).
	Headers    map[string]string
	HTTPClient *http.Client
	Now        func() time.Time
}

// Connector posts incident changes to one URL.
type Connector struct {
	o    Options
	when *vm.Program
}

// Body is what each request carries. Delivery is the same for a retried
// change: receivers deduplicate on it.
type Body struct {
	Delivery string               `json:"delivery"`
	Incident Incident             `json:"incident"`
	Change   triage.TimelineEntry `json:"change"`
}

// Incident is the incident as it is when the change is sent.
type Incident struct {
	ID              uint64            `json:"id"`
	Key             string            `json:"key"`
	Title           string            `json:"title"`
	Status          string            `json:"status"`
	Priority        string            `json:"priority"`
	Severity        string            `json:"severity"`
	CI              string            `json:"ci"`
	Service         string            `json:"service"`
	AssignmentGroup string            `json:"assignment_group,omitempty"`
	Labels          map[string]string `json:"labels"`
	AlertCount      int               `json:"alert_count"`
	OpenedAt        time.Time         `json:"opened_at"`
	AcknowledgedAt  *time.Time        `json:"acknowledged_at"`
	ResolvedAt      *time.Time        `json:"resolved_at"`
	RootCause       triage.RootCause  `json:"root_cause"`
	Ticket          *triage.Ticket    `json:"ticket"`
	ProblemID       *uint64           `json:"problem_id"`
}

// New validates the options.
func New(o Options) (*Connector, error) {
	if o.Name == "" {
		return nil, fmt.Errorf("webhook: name must be set")
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook %s: url %q is not an http(s) URL", o.Name, o.URL)
	}
	c := &Connector{o: o}
	if o.When != "" {
		if c.when, err = connectors.CompileCondition(o.When); err != nil {
			return nil, fmt.Errorf("webhook %s: when: %w", o.Name, err)
		}
	}
	if c.o.HTTPClient == nil {
		c.o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.o.Now == nil {
		c.o.Now = time.Now
	}
	return c, nil
}

// Name implements connectors.Connector.
func (c *Connector) Name() string { return "webhook:" + c.o.Name }

// Sign is the signature header value of a body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver implements connectors.Connector.
func (c *Connector) Deliver(ctx context.Context, d *connectors.Delivery) error {
	inc := d.Incident
	if c.when != nil {
		if ok, _ := connectors.Match(c.when, inc); !ok {
			return nil
		}
	}
	b := Body{
		Delivery: c.o.Name + "/" + inc.Key + "/" + strconv.FormatUint(d.Change.Seq, 10),
		Change:   d.Change,
		Incident: Incident{ID: inc.ID, Key: inc.Key, Title: inc.Title, Status: string(inc.Status), Priority: inc.Priority,
			Severity: inc.Severity, CI: inc.CI, Service: inc.Service, AssignmentGroup: inc.AssignmentGroup, Labels: inc.Labels,
			AlertCount: inc.AlertCount, OpenedAt: inc.OpenedAt, AcknowledgedAt: inc.AcknowledgedAt, ResolvedAt: inc.ResolvedAt,
			RootCause: inc.RootCause, Ticket: inc.Ticket, ProblemID: inc.ProblemID},
	}
	body, err := json.Marshal(&b)
	if err != nil {
		return connectors.Permanent(fmt.Errorf("encoding: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.o.URL, bytes.NewReader(body))
	if err != nil {
		return connectors.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "triage")
	req.Header.Set("X-Triage-Delivery", b.Delivery)
	if c.o.Secret != "" {
		req.Header.Set("X-Triage-Signature", Sign(c.o.Secret, body))
	}
	for k, v := range c.o.Headers {
		req.Header.Set(k, v)
	}
	resp, err := c.o.HTTPClient.Do(req)
	if resp != nil {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
			err = fmt.Errorf("webhook %s: HTTP %d: %s", c.o.Name, resp.StatusCode, bytes.TrimSpace(msg))
		}
	}
	if err != nil && resp == nil {
		err = fmt.Errorf("webhook %s: %w", c.o.Name, err)
	}
	return connectors.Classify(resp, err, c.o.Now())
}
