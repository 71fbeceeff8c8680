package triage

// CI is a configuration item of the CMDB: a host, a database, a service, a
// network device. Alerts bind to CIs; the relations between CIs carry
// failures from one to another.
type CI struct {
	ID         string            `json:"id" yaml:"id"`
	Type       string            `json:"type,omitempty" yaml:"type"`
	Name       string            `json:"name,omitempty" yaml:"name"`
	Service    string            `json:"service,omitempty" yaml:"service"`
	Aliases    []string          `json:"aliases,omitempty" yaml:"aliases"`
	Attributes map[string]string `json:"attributes,omitempty" yaml:"attributes"`
}

// Relation is a directed edge between two CIs: From depends_on / runs_on /
// connected_to / member_of To. A failure of To can cause alerts on From.
type Relation struct {
	From string `json:"from" yaml:"from"`
	To   string `json:"to" yaml:"to"`
	Type string `json:"type" yaml:"type"`
}

// Relation types.
const (
	RelDependsOn   = "depends_on"
	RelRunsOn      = "runs_on"
	RelConnectedTo = "connected_to"
	RelMemberOf    = "member_of"
)

// Binding records how an alert was bound to a CI: which label, its value,
// and whether the value matched the CI's id, name or an alias.
type Binding struct {
	CI    string `json:"ci"`
	Label string `json:"label"`
	Value string `json:"value"`
	Via   string `json:"via"` // id, name or alias
}

// Routing is what enrich rules set on an alert beyond its labels; an
// incident takes it from the alerts that join it.
type Routing struct {
	// Severity is set when a rule set the alert's severity: later
	// notifications do not change it.
	Severity        string `json:"severity,omitempty"`
	Priority        string `json:"priority,omitempty"`
	Service         string `json:"service,omitempty"`
	AssignmentGroup string `json:"assignment_group,omitempty"`
	Project         string `json:"jira_project,omitempty"`
}

// IsZero reports whether no field is set.
func (r Routing) IsZero() bool { return r == Routing{} }
