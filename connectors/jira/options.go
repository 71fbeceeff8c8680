// Package jira keeps one Jira issue per incident, both ways.
//
// Outbound, it is a connectors.Connector: an incident that meets the
// configured condition gets an issue (project, type, summary and
// description from templates, priority mapping, labels, components, custom
// fields) carrying the incident's identity as an issue entity property and,
// when configured, a dedicated field. Before it creates, it searches Jira
// for that identity, and the intent to create is saved first, so a crash
// between "created" and "recorded" finds the issue instead of making a
// second one (it waits out the search index lag when it must). Later
// changes become comments, each marked with its change number so a repeat
// after a crash is recognised; priority changes update the field;
// resolution and reopening move the issue through configured transitions,
// leaving issues closed as "Won't Fix" and the like alone.
//
// Inbound, a webhook endpoint (shared secret or Jira's HMAC signature) and
// a JQL polling fallback bring a person's resolve, reopen, assignment and
// comments back to the incident's timeline. Changes Triage made itself are
// recognised by their author and not echoed back.
package jira

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/connectors"
)

// Deployment kinds.
const (
	Cloud      = "cloud"
	DataCenter = "datacenter"
)

// Options configure the connector.
type Options struct {
	// URL is the Jira base URL, e.g. https://example.atlassian.net.
	URL string
	// Deployment is Cloud (email + API token, search/jql) or DataCenter
	// (personal access token, search); empty picks Cloud for
	// *.atlassian.net and DataCenter otherwise.
	Deployment string
	// User is the account email (Cloud); Token the API token (Cloud) or
	// personal access token (Data Center).
	User, Token string

	// Project and IssueType are the defaults when no route matches.
	Project, IssueType string
	// MinPriority: incidents of this priority or more urgent get an issue
	// ("P3" by default); When, an expr condition on `incident`, replaces
	// it when set.
	MinPriority string
	When        string
	// Routes pick project, issue type, labels and components by an expr
	// condition; the first match wins. An enrich rule's jira_project on
	// the incident overrides the project.
	Routes []Route
	// Summary and Description are text/template templates over
	// TemplateData.
	Summary, Description string
	// Priorities maps P1..P5 to Jira priority names.
	Priorities map[string]string
	Labels     []string
	Components []string
	// Fields are extra fields set at creation (custom fields by id).
	Fields map[string]any
	// IncidentField is an optional text custom field (customfield_NNNNN)
	// holding the incident identity, searched before create; without it
	// the summary (which then must contain the incident key) is searched
	// and the entity property checks each hit.
	IncidentField string
	// Instance names this Triage in identities, so that two Triage
	// installations can share a Jira project ("triage" by default).
	Instance string
	// TriageURL is the base URL of Triage's API, for links.
	TriageURL string

	// Transitions name the Jira transitions (by transition name or target
	// status name) for resolve, reopen and acknowledge; empty resolve and
	// reopen pick the first transition into (out of) a done status;
	// empty acknowledge transitions nothing.
	Transitions Transitions
	// Resolution is set when resolving, when the transition screen has it.
	Resolution string
	// Reopen is the policy when a resolved incident fires again: "reopen"
	// (default) reopens the issue unless it was resolved with one of
	// KeepResolutions, where it comments; "comment" always comments.
	Reopen          string
	KeepResolutions []string

	// IndexLag is how long a created issue may take to show in search
	// (Jira Cloud's index is eventually consistent): after a crash during
	// a create, the connector waits this long before creating again.
	IndexLag time.Duration

	// Inbound.
	WebhookSecret string
	// PollInterval is how often JQL finds issues updated in Jira; 0 turns
	// polling off.
	PollInterval time.Duration
	// Statuses map Jira status names to an incident status (open,
	// acknowledged, resolved); unmapped statuses go by their category
	// (new → open, indeterminate → acknowledged, done → resolved).
	Statuses map[string]string
	// AcknowledgeOnAssign acknowledges an incident when its issue is
	// assigned in Jira.
	AcknowledgeOnAssign bool

	// HTTPClient carries the requests (its timeout bounds each); nil uses
	// one with a 30s timeout. Auth is added around its transport.
	HTTPClient *http.Client
	Now        func() time.Time
}

// Route sends matching incidents to a project.
type Route struct {
	When       string
	Project    string
	IssueType  string
	Labels     []string
	Components []string
}

// Transitions names the workflow transitions the connector uses.
type Transitions struct {
	Resolve, Reopen, Acknowledge string
}

// TemplateData is what summary and description templates see.
type TemplateData struct {
	Incident *triage.Incident
	// Alerts are the incident's first 20 alerts.
	Alerts []triage.Alert
	// Link is the incident in Triage's API, when TriageURL is set.
	Link string
}

// Defaults.
const (
	DefaultSummary     = `[{{.Incident.Key}}] {{.Incident.Title}}`
	DefaultDescription = `Triage incident {{.Incident.Key}}: {{.Incident.Title}}

Priority {{.Incident.Priority}}, severity {{.Incident.Severity}}{{with .Incident.Service}}, service {{.}}{{end}}{{with .Incident.CI}}, CI {{.}}{{end}}.
{{with .Incident.RootCause.CI}}Probable root cause: {{.}} ({{$.Incident.RootCause.Reason}})
{{end}}
Alerts ({{.Incident.AlertCount}}):
{{range .Alerts}}* {{index .Labels "alertname"}}{{with .CI}} on {{.}}{{end}}: {{.Status}} since {{.StartsAt.UTC.Format "2006-01-02 15:04:05 MST"}}{{with .Joined.Reason}} ({{.}}){{end}}
{{end}}{{with .Link}}
Details: {{.}}{{end}}`
)

// DefaultKeepResolutions are the resolutions a re-fire does not reopen.
var DefaultKeepResolutions = []string{"Won't Fix", "Won't Do", "Duplicate", "Cannot Reproduce", "Declined"}

// DefaultPriorities maps Triage priorities to Jira's default scheme.
var DefaultPriorities = map[string]string{"P1": "Highest", "P2": "High", "P3": "Medium", "P4": "Low", "P5": "Lowest"}

// compiled is the validated, compiled form of Options.
type compiled struct {
	base     *url.URL
	summary  *template.Template
	desc     *template.Template
	when     *vm.Program
	routes   []compiledRoute
	hash     string // identifies the outbound configuration, for permanent failures
	statuses map[string]string
}

type compiledRoute struct {
	Route
	when *vm.Program
}

// ParseTemplate parses a summary or description template and renders it
// once on a sample incident, so that a template error shows at load.
func ParseTemplate(name, src string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s template: %w", name, err)
	}
	if _, err := render(t, sampleIncident(), ""); err != nil {
		return nil, fmt.Errorf("%s template: %w", name, err)
	}
	return t, nil
}

func sampleIncident() *triage.Incident {
	return &triage.Incident{ID: 1, Key: "INC-1", Title: "HighErrorRate on svc-orders", Priority: "P2", Severity: "critical",
		Status: triage.IncidentOpen, Labels: map[string]string{"alertname": "HighErrorRate"},
		Alerts: []triage.Alert{{Labels: map[string]string{"alertname": "HighErrorRate"}, Status: triage.AlertFiring}}}
}

func render(t *template.Template, inc *triage.Incident, triageURL string) (string, error) {
	d := TemplateData{Incident: inc, Alerts: inc.Alerts[:min(len(inc.Alerts), 20)]}
	if triageURL != "" {
		d.Link = strings.TrimRight(triageURL, "/") + "/api/v1/incidents/" + inc.Key
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Validate checks the options and fills defaults; the returned problems
// name the option (e.g. "routes.1.when").
func (o *Options) Validate() []string {
	_, errs := o.compile()
	return errs
}

func (o *Options) defaults() {
	if o.Deployment == "" {
		if u, err := url.Parse(o.URL); err == nil && strings.HasSuffix(u.Hostname(), ".atlassian.net") {
			o.Deployment = Cloud
		} else {
			o.Deployment = DataCenter
		}
	}
	if o.IssueType == "" {
		o.IssueType = "Task"
	}
	if o.MinPriority == "" {
		o.MinPriority = "P3"
	}
	if o.Summary == "" {
		o.Summary = DefaultSummary
	}
	if o.Description == "" {
		o.Description = DefaultDescription
	}
	if o.Priorities == nil {
		o.Priorities = DefaultPriorities
	}
	if o.Instance == "" {
		o.Instance = "triage"
	}
	if o.Reopen == "" {
		o.Reopen = "reopen"
	}
	if o.KeepResolutions == nil {
		o.KeepResolutions = DefaultKeepResolutions
	}
	if o.IndexLag == 0 {
		o.IndexLag = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

func (o *Options) compile() (*compiled, []string) {
	o.defaults()
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	c := &compiled{statuses: map[string]string{}}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("url: %q is not an http(s) URL", o.URL)
	} else {
		c.base = u
	}
	switch o.Deployment {
	case Cloud:
		if o.User == "" {
			add("user: Jira Cloud needs the account email")
		}
	case DataCenter:
	default:
		add("deployment: %q is not cloud or datacenter", o.Deployment)
	}
	if o.Token == "" {
		add("token_file: no API token (set token_file or token_env)")
	}
	if o.Project == "" {
		add("project: must name the default Jira project key")
	}
	if _, ok := o.Priorities[o.MinPriority]; !ok && o.When == "" {
		add("min_priority: %q is not one of P1..P5", o.MinPriority)
	}
	for _, p := range []string{"P1", "P2", "P3", "P4", "P5"} {
		if o.Priorities[p] == "" {
			add("priorities: no Jira priority for %s", p)
		}
	}
	if o.When != "" {
		if c.when, err = connectors.CompileCondition(o.When); err != nil {
			add("when: %v", err)
		}
	}
	for i, r := range o.Routes {
		cr := compiledRoute{Route: r}
		if r.When == "" {
			add("routes.%d.when: must be set", i)
		} else if cr.when, err = connectors.CompileCondition(r.When); err != nil {
			add("routes.%d.when: %v", i, err)
		}
		c.routes = append(c.routes, cr)
	}
	if c.summary, err = ParseTemplate("summary", o.Summary); err != nil {
		add("summary: %v", err)
	} else if o.IncidentField == "" {
		s, _ := render(c.summary, sampleIncident(), "")
		if !strings.Contains(s, "INC-1") {
			add("summary: must contain the incident key ({{.Incident.Key}}) unless incident_field is set: the key is how an issue is found again")
		}
	}
	if c.desc, err = ParseTemplate("description", o.Description); err != nil {
		add("description: %v", err)
	}
	if o.IncidentField != "" && !strings.HasPrefix(o.IncidentField, "customfield_") {
		add("incident_field: %q is not a custom field id such as customfield_10050", o.IncidentField)
	}
	for _, l := range append(slices.Clone(o.Labels), routeLabels(o.Routes)...) {
		if l == "" || strings.ContainsAny(l, " \t\n") {
			add("labels: %q: Jira labels cannot be empty or contain spaces", l)
		}
	}
	switch o.Reopen {
	case "reopen", "comment":
	default:
		add("reopen: %q is not reopen or comment", o.Reopen)
	}
	for name, st := range o.Statuses {
		switch st {
		case string(triage.IncidentOpen), string(triage.IncidentAcknowledged), string(triage.IncidentResolved):
			c.statuses[strings.ToLower(name)] = st
		default:
			add("statuses.%s: %q is not open, acknowledged or resolved", name, st)
		}
	}
	if o.PollInterval < 0 {
		add("poll_interval: must not be negative")
	}
	// The hash covers what decides whether a create can succeed.
	h := sha256.New()
	_ = json.NewEncoder(h).Encode([]any{o.URL, o.Project, o.IssueType, o.Routes, o.Summary, o.Description,
		o.Priorities, o.Labels, o.Components, o.Fields, o.IncidentField})
	c.hash = hex.EncodeToString(h.Sum(nil))[:16]
	return c, errs
}

func routeLabels(rs []Route) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Labels...)
	}
	return out
}
