package jirafake

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Deployment kinds for Options.Deployment.
const (
	Cloud      = "cloud"
	DataCenter = "datacenter"
)

// Workflow names for Project.Workflow.
const (
	// SoftwareWorkflow is Jira Software's simplified workflow: To Do, In Progress, Done, each
	// reachable from every other.
	SoftwareWorkflow = "software"
	// ServiceManagementWorkflow is a Jira Service Management style workflow: Open, Waiting for
	// support, Waiting for customer, In Progress, Resolved, Closed, where not every status is
	// reachable from every other.
	ServiceManagementWorkflow = "service_management"
)

// Custom field types for CustomField.Type.
const (
	FieldText   = "text"
	FieldNumber = "number"
	FieldSelect = "select"
	FieldLabels = "labels"
)

// Options configure a Server. The zero value is a usable Cloud site with no users: give at least
// one User and one Project.
type Options struct {
	// Deployment is Cloud (default) or DataCenter. It decides authentication, user
	// representation (accountId or name), serverInfo and which search endpoint exists.
	Deployment string
	// BaseURL is the site URL used in "self" links when there is no request to take it from
	// (webhooks, human actions). Empty means the host of the latest request.
	BaseURL string
	Users   []User
	// Projects default to none. A project without IssueTypes gets Task, Bug and Incident.
	Projects []Project
	// Priorities default to Highest, High, Medium, Low, Lowest with ids "1".."5".
	Priorities []Priority
	// DefaultPriority is the priority of an issue created without one. Default "Medium", or the
	// middle of Priorities.
	DefaultPriority string
	// Resolutions default to Done, Won't Do, Duplicate, Cannot Reproduce with ids "10000"...
	Resolutions  []Resolution
	CustomFields []CustomField
	// IndexedProperties are the entity properties JQL can search with issue.property[key].path,
	// as an app's index declaration makes them on real Jira.
	IndexedProperties []IndexedProperty
	// IndexDelay is how long after a change JQL search sees it. GET /issue is always current.
	IndexDelay time.Duration
	// RateLimit limits requests per authenticated user. Zero means unlimited.
	RateLimit RateLimit
	// SearchMaxResults caps maxResults of GET/POST /search (Data Center). Default 100 (a real
	// Data Center's default cap is 1000, jira.search.views.default.max).
	SearchMaxResults int
	// MaxBodyBytes is the largest request body accepted; larger is 413. Default 5 MiB.
	MaxBodyBytes int64
	// Now is the clock for timestamps, the index delay and rate limiting. Default time.Now.
	Now func() time.Time
	// WebhookURL receives issue and comment events when set.
	WebhookURL string
	// WebhookSecret signs webhook bodies (X-Hub-Signature: sha256=...) when set.
	WebhookSecret string
	// WebhookClient delivers webhooks. Default: a client with a 5 s timeout.
	WebhookClient *http.Client
}

// User is a Jira user who can authenticate and act.
type User struct {
	// AccountID identifies the user on Cloud. Default: "acc-" + Name, or derived from Email.
	AccountID string
	// Name is the username on Data Center. Default: the part of Email before "@".
	Name        string
	DisplayName string
	Email       string
	// APIToken is the Cloud API token (Basic email:token); on Data Center Basic name:token also
	// works.
	APIToken string
	// PAT is the Data Center personal access token (Authorization: Bearer PAT).
	PAT string
}

// Project is a Jira project.
type Project struct {
	Key  string
	Name string
	// ID defaults to "10000", "10001"... in order.
	ID         string
	IssueTypes []string
	// Workflow is SoftwareWorkflow (default) or ServiceManagementWorkflow.
	Workflow   string
	Components []string
	// Lead is the user id (AccountID or Name) of the project lead.
	Lead string
}

// Priority is a Jira issue priority.
type Priority struct {
	ID   string
	Name string
}

// Resolution is a Jira issue resolution.
type Resolution struct {
	ID   string
	Name string
}

// CustomField is a custom field, settable on every project's screens.
type CustomField struct {
	// ID is the field id, "customfield_10050".
	ID   string
	Name string
	// Type is FieldText, FieldNumber, FieldSelect or FieldLabels.
	Type string
	// Options are the allowed values of a FieldSelect field.
	Options []string
}

// IndexedProperty declares an entity property value that JQL can search.
type IndexedProperty struct {
	// Key is the property key, Path the dot-separated path inside its JSON value ("" for the
	// whole value).
	Key, Path string
}

// RateLimit is a token bucket per user.
type RateLimit struct {
	// PerSecond is the refill rate. Zero disables rate limiting.
	PerSecond float64
	// Burst is the bucket size. Default: PerSecond rounded up, at least 1.
	Burst int
}

// statusDef is a status of a workflow.
type statusDef struct {
	ID, Name, Category string // Category: new, indeterminate, done
}

// transitionDef is a workflow transition.
type transitionDef struct {
	ID, Name string
	From     []string // status names; empty means from every status (a global transition)
	To       string
	Event    string // issue_event_type_name fired
}

type workflowDef struct {
	name        string
	statuses    []statusDef
	transitions []transitionDef
}

var statusCategories = map[string]struct {
	id              int
	name, colorName string
}{
	"new":           {2, "To Do", "blue-gray"},
	"indeterminate": {4, "In Progress", "yellow"},
	"done":          {3, "Done", "green"},
}

var softwareWorkflow = workflowDef{
	name: SoftwareWorkflow,
	statuses: []statusDef{
		{"10000", "To Do", "new"},
		{"3", "In Progress", "indeterminate"},
		{"10001", "Done", "done"},
	},
	transitions: []transitionDef{
		{ID: "11", Name: "To Do", To: "To Do", Event: "issue_generic"},
		{ID: "21", Name: "In Progress", To: "In Progress", Event: "issue_generic"},
		{ID: "31", Name: "Done", To: "Done", Event: "issue_generic"},
	},
}

var serviceManagementWorkflow = workflowDef{
	name: ServiceManagementWorkflow,
	statuses: []statusDef{
		{"1", "Open", "new"},
		{"10002", "Waiting for support", "new"},
		{"10003", "Waiting for customer", "indeterminate"},
		{"3", "In Progress", "indeterminate"},
		{"5", "Resolved", "done"},
		{"6", "Closed", "done"},
	},
	transitions: []transitionDef{
		{ID: "11", Name: "Start progress", From: []string{"Open", "Waiting for support", "Waiting for customer"}, To: "In Progress", Event: "issue_work_started"},
		{ID: "21", Name: "Escalate", From: []string{"Open"}, To: "Waiting for support", Event: "issue_generic"},
		{ID: "31", Name: "Respond to customer", From: []string{"Open", "Waiting for support", "In Progress"}, To: "Waiting for customer", Event: "issue_generic"},
		{ID: "41", Name: "Respond to support", From: []string{"Waiting for customer"}, To: "Waiting for support", Event: "issue_generic"},
		{ID: "51", Name: "Stop progress", From: []string{"In Progress"}, To: "Open", Event: "issue_work_stopped"},
		{ID: "761", Name: "Resolve this issue", From: []string{"Open", "Waiting for support", "Waiting for customer", "In Progress"}, To: "Resolved", Event: "issue_resolved"},
		{ID: "771", Name: "Close", From: []string{"Open", "Resolved"}, To: "Closed", Event: "issue_closed"},
		{ID: "781", Name: "Reopen", From: []string{"Resolved", "Closed"}, To: "Open", Event: "issue_reopened"},
	},
}

func (w *workflowDef) status(name string) (statusDef, bool) {
	for _, s := range w.statuses {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return statusDef{}, false
}

// available are the transitions from status name, in workflow order.
func (w *workflowDef) available(from string) []transitionDef {
	var out []transitionDef
	for _, t := range w.transitions {
		if t.To == from && len(t.From) == 0 {
			continue // a global transition to the current status is not offered
		}
		if len(t.From) == 0 || containsFold(t.From, from) {
			out = append(out, t)
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// config is Options with defaults applied and lookup tables built.
type config struct {
	Options
	cloud      bool
	projects   []*project
	issueTypes []issueTypeDef
	custom     map[string]*CustomField // by id
}

type project struct {
	Project
	wf *workflowDef
}

type issueTypeDef struct{ ID, Name string }

var standardIssueTypes = map[string]string{"Bug": "10004", "Task": "10002", "Story": "10001", "Epic": "10000", "Incident": "10005", "Service Request": "10006", "Problem": "10007", "Change": "10008"}

func newConfig(o Options) *config {
	c := &config{Options: o}
	if c.Deployment == "" {
		c.Deployment = Cloud
	}
	c.cloud = !strings.EqualFold(c.Deployment, DataCenter)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 5 << 20
	}
	if c.SearchMaxResults <= 0 {
		c.SearchMaxResults = 100
	}
	if len(c.Priorities) == 0 {
		c.Priorities = []Priority{{"1", "Highest"}, {"2", "High"}, {"3", "Medium"}, {"4", "Low"}, {"5", "Lowest"}}
	}
	for i := range c.Priorities {
		if c.Priorities[i].ID == "" {
			c.Priorities[i].ID = strconv.Itoa(i + 1)
		}
	}
	if c.DefaultPriority == "" {
		c.DefaultPriority = c.Priorities[len(c.Priorities)/2].Name
		for _, p := range c.Priorities {
			if p.Name == "Medium" {
				c.DefaultPriority = "Medium"
			}
		}
	}
	if len(c.Resolutions) == 0 {
		c.Resolutions = []Resolution{{"10000", "Done"}, {"10001", "Won't Do"}, {"10002", "Duplicate"}, {"10003", "Cannot Reproduce"}}
	}
	for i := range c.Resolutions {
		if c.Resolutions[i].ID == "" {
			c.Resolutions[i].ID = strconv.Itoa(10000 + i)
		}
	}
	users := make([]User, len(c.Users))
	for i, u := range c.Users {
		if u.Name == "" {
			if at := strings.IndexByte(u.Email, '@'); at > 0 {
				u.Name = u.Email[:at]
			} else if u.AccountID != "" {
				u.Name = u.AccountID
			} else {
				u.Name = fmt.Sprintf("user%d", i+1)
			}
		}
		if u.AccountID == "" {
			u.AccountID = "acc-" + u.Name
		}
		if u.DisplayName == "" {
			u.DisplayName = u.Name
		}
		users[i] = u
	}
	c.Users = users
	typeIDs := map[string]string{}
	next := 10100
	for i, p := range c.Projects {
		if p.ID == "" {
			p.ID = strconv.Itoa(10000 + i)
		}
		if p.Name == "" {
			p.Name = p.Key
		}
		if len(p.IssueTypes) == 0 {
			p.IssueTypes = []string{"Task", "Bug", "Incident"}
		}
		wf := &softwareWorkflow
		if p.Workflow == ServiceManagementWorkflow {
			wf = &serviceManagementWorkflow
		} else {
			p.Workflow = SoftwareWorkflow
		}
		for _, t := range p.IssueTypes {
			if _, ok := typeIDs[t]; ok {
				continue
			}
			id, ok := standardIssueTypes[t]
			if !ok {
				id = strconv.Itoa(next)
				next++
			}
			typeIDs[t] = id
			c.issueTypes = append(c.issueTypes, issueTypeDef{id, t})
		}
		c.projects = append(c.projects, &project{Project: p, wf: wf})
	}
	c.custom = map[string]*CustomField{}
	for i := range c.CustomFields {
		f := &c.CustomFields[i]
		if f.Type == "" {
			f.Type = FieldText
		}
		c.custom[f.ID] = f
	}
	return c
}

func (c *config) projectByKeyOrID(s string) *project {
	for _, p := range c.projects {
		if strings.EqualFold(p.Key, s) || p.ID == s {
			return p
		}
	}
	return nil
}

func (c *config) issueType(nameOrID string) (issueTypeDef, bool) {
	for _, t := range c.issueTypes {
		if t.ID == nameOrID || strings.EqualFold(t.Name, nameOrID) {
			return t, true
		}
	}
	return issueTypeDef{}, false
}

func (c *config) priority(nameOrID string) (Priority, bool) {
	for _, p := range c.Priorities {
		if p.ID == nameOrID || strings.EqualFold(p.Name, nameOrID) {
			return p, true
		}
	}
	return Priority{}, false
}

// priorityRank orders priorities: 0 is the highest.
func (c *config) priorityRank(name string) int {
	for i, p := range c.Priorities {
		if strings.EqualFold(p.Name, name) {
			return i
		}
	}
	return len(c.Priorities)
}

func (c *config) resolution(nameOrID string) (Resolution, bool) {
	for _, r := range c.Resolutions {
		if r.ID == nameOrID || strings.EqualFold(r.Name, nameOrID) {
			return r, true
		}
	}
	return Resolution{}, false
}

// user finds a user by account id, name or email.
func (c *config) user(id string) *User {
	if id == "" {
		return nil
	}
	for i := range c.Users {
		u := &c.Users[i]
		if u.AccountID == id || u.Name == id || (u.Email != "" && strings.EqualFold(u.Email, id)) {
			return u
		}
	}
	return nil
}

// userID is how the deployment identifies u: accountId on Cloud, name on Data Center.
func (c *config) userID(u *User) string {
	if u == nil {
		return ""
	}
	if c.cloud {
		return u.AccountID
	}
	return u.Name
}

func (c *config) customByName(name string) *CustomField {
	for i := range c.CustomFields {
		if strings.EqualFold(c.CustomFields[i].Name, name) {
			return &c.CustomFields[i]
		}
	}
	return nil
}

func (c *config) propertyIndexed(key, path string) bool {
	for _, p := range c.IndexedProperties {
		if p.Key == key && p.Path == path {
			return true
		}
	}
	return false
}
