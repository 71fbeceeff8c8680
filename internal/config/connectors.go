package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/triage-dev/triage/connectors/jira"
	"github.com/triage-dev/triage/connectors/webhook"
)

// Jira configures the Jira connector; without url it is off. Secrets come
// from files or environment variables, never from the config itself.
type Jira struct {
	URL        string `yaml:"url"`
	Deployment string `yaml:"deployment"` // cloud | datacenter; default from the URL
	User       string `yaml:"user"`       // Cloud: the account email
	TokenFile  string `yaml:"token_file"` // API token (Cloud) or personal access token (Data Center)
	TokenEnv   string `yaml:"token_env"`

	Project       string            `yaml:"project"`
	IssueType     string            `yaml:"issue_type"`
	MinPriority   string            `yaml:"min_priority"`
	When          string            `yaml:"when"`
	Routes        []JiraRoute       `yaml:"routes"`
	Summary       string            `yaml:"summary"`
	Description   string            `yaml:"description"`
	Priorities    map[string]string `yaml:"priorities"`
	Labels        []string          `yaml:"labels"`
	Components    []string          `yaml:"components"`
	Fields        map[string]any    `yaml:"fields"`
	IncidentField string            `yaml:"incident_field"`
	Instance      string            `yaml:"instance"`
	TriageURL     string            `yaml:"triage_url"`

	Transitions     JiraTransitions `yaml:"transitions"`
	Resolution      string          `yaml:"resolution"`
	Reopen          string          `yaml:"reopen"`
	KeepResolutions []string        `yaml:"keep_resolutions"`
	IndexLag        Duration        `yaml:"index_lag"`
	Timeout         Duration        `yaml:"timeout"`

	WebhookSecretFile   string            `yaml:"webhook_secret_file"`
	WebhookSecretEnv    string            `yaml:"webhook_secret_env"`
	PollInterval        Duration          `yaml:"poll_interval"`
	Statuses            map[string]string `yaml:"statuses"`
	AcknowledgeOnAssign bool              `yaml:"acknowledge_on_assign"`
}

// JiraRoute picks the project of matching incidents.
type JiraRoute struct {
	When       string   `yaml:"when"`
	Project    string   `yaml:"project"`
	IssueType  string   `yaml:"issue_type"`
	Labels     []string `yaml:"labels"`
	Components []string `yaml:"components"`
}

// JiraTransitions names workflow transitions.
type JiraTransitions struct {
	Resolve     string `yaml:"resolve"`
	Reopen      string `yaml:"reopen"`
	Acknowledge string `yaml:"acknowledge"`
}

// Enabled reports whether the Jira connector is configured.
func (j Jira) Enabled() bool { return j.URL != "" }

// Webhook is one generic outbound webhook.
type Webhook struct {
	Name       string            `yaml:"name"`
	URL        string            `yaml:"url"`
	SecretFile string            `yaml:"secret_file"`
	SecretEnv  string            `yaml:"secret_env"`
	When       string            `yaml:"when"`
	Headers    map[string]string `yaml:"headers"`
	Timeout    Duration          `yaml:"timeout"`
}

// Outbox tunes delivery to connectors.
type Outbox struct {
	Workers    int      `yaml:"workers"`
	MinBackoff Duration `yaml:"min_backoff"`
	MaxBackoff Duration `yaml:"max_backoff"`
}

// secret reads a connector secret (ReadSecret) that, once configured,
// must not be empty.
func secret(file, env string, getenv func(string) string) (string, error) {
	v, err := ReadSecret(file, env, getenv)
	if err == nil && v == "" && (file != "" || env != "") {
		where := file
		if where == "" {
			where = "environment variable " + env
		}
		err = fmt.Errorf("%s is empty", where)
	}
	return v, err
}

// JiraOptions builds the connector's options, reading its secrets; with
// getenv nil the secrets are left empty (validation only).
func (c *Config) JiraOptions(getenv func(string) string) (jira.Options, error) {
	j := c.Jira
	o := jira.Options{
		URL: j.URL, Deployment: j.Deployment, User: j.User, Project: j.Project, IssueType: j.IssueType,
		MinPriority: j.MinPriority, When: j.When, Summary: j.Summary, Description: j.Description,
		Priorities: j.Priorities, Labels: j.Labels, Components: j.Components, Fields: j.Fields,
		IncidentField: j.IncidentField, Instance: j.Instance, TriageURL: j.TriageURL,
		Transitions: jira.Transitions{Resolve: j.Transitions.Resolve, Reopen: j.Transitions.Reopen, Acknowledge: j.Transitions.Acknowledge},
		Resolution:  j.Resolution, Reopen: j.Reopen, KeepResolutions: j.KeepResolutions, IndexLag: j.IndexLag.D(),
		PollInterval: j.PollInterval.D(), Statuses: j.Statuses, AcknowledgeOnAssign: j.AcknowledgeOnAssign,
	}
	for _, r := range j.Routes {
		o.Routes = append(o.Routes, jira.Route{When: r.When, Project: r.Project, IssueType: r.IssueType, Labels: r.Labels, Components: r.Components})
	}
	if getenv == nil {
		o.Token = "unread"
		return o, nil
	}
	var err error
	if o.Token, err = secret(j.TokenFile, j.TokenEnv, getenv); err != nil {
		return o, fmt.Errorf("jira token: %w", err)
	}
	if o.WebhookSecret, err = secret(j.WebhookSecretFile, j.WebhookSecretEnv, getenv); err != nil {
		return o, fmt.Errorf("jira webhook secret: %w", err)
	}
	return o, nil
}

// WebhookOptions builds one webhook connector's options, reading its
// secret; with getenv nil the secret is left empty.
func (w Webhook) WebhookOptions(getenv func(string) string) (webhook.Options, error) {
	o := webhook.Options{Name: w.Name, URL: w.URL, When: w.When, Headers: w.Headers}
	if getenv == nil {
		return o, nil
	}
	s, err := secret(w.SecretFile, w.SecretEnv, getenv)
	if err != nil {
		return o, fmt.Errorf("webhook %s secret: %w", w.Name, err)
	}
	o.Secret = s
	return o, nil
}

// Timeout is the request timeout of a connector (10s when unset).
func timeoutOr(d Duration) time.Duration {
	if d <= 0 {
		return 10 * time.Second
	}
	return d.D()
}

// JiraTimeout is the Jira request timeout.
func (c *Config) JiraTimeout() time.Duration { return timeoutOr(c.Jira.Timeout) }

// WebhookTimeout is the webhook request timeout.
func (w Webhook) WebhookTimeout() time.Duration { return timeoutOr(w.Timeout) }

func (c *Config) validateConnectors(add func(path, format string, args ...any)) {
	if c.Jira.Enabled() {
		j := c.Jira
		if j.TokenFile == "" && j.TokenEnv == "" {
			add("jira.token_file", "set token_file or token_env (the API token or personal access token)")
		}
		if j.TokenFile != "" && j.TokenEnv != "" {
			add("jira.token_file", "set token_file or token_env, not both")
		}
		if j.WebhookSecretFile != "" && j.WebhookSecretEnv != "" {
			add("jira.webhook_secret_file", "set webhook_secret_file or webhook_secret_env, not both")
		}
		o, _ := c.JiraOptions(nil)
		for _, msg := range o.Validate() {
			path, rest, _ := strings.Cut(msg, ": ")
			path = strings.SplitN(path, " ", 2)[0]
			add("jira."+path, "%s", rest)
		}
	}
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		p := fmt.Sprintf("webhooks.%d", i)
		if names[w.Name] {
			add(p+".name", "%q is used twice", w.Name)
		}
		names[w.Name] = true
		if w.SecretFile == "" && w.SecretEnv == "" {
			add(p+".secret_file", "set secret_file or secret_env: receivers must be able to check the signature")
		}
		o, _ := w.WebhookOptions(nil)
		if _, err := webhook.New(o); err != nil {
			add(p, "%v", err)
		}
	}
	if c.Outbox.Workers < 0 {
		add("outbox.workers", "must not be negative")
	}
	if c.Outbox.MaxBackoff > 0 && c.Outbox.MaxBackoff < c.Outbox.MinBackoff {
		add("outbox.max_backoff", "must not be below min_backoff")
	}
}
