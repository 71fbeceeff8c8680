package connectors

import (
	"fmt"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/triage-dev/triage"
)

// exprEnv is what conditions see: `incident`.
type exprEnv struct {
	Incident incidentEnv `expr:"incident"`
}

type incidentEnv struct {
	Key             string            `expr:"key"`
	Title           string            `expr:"title"`
	Status          string            `expr:"status"`
	Priority        string            `expr:"priority"`
	Severity        string            `expr:"severity"`
	CI              string            `expr:"ci"`
	Service         string            `expr:"service"`
	AssignmentGroup string            `expr:"assignment_group"`
	Project         string            `expr:"jira_project"`
	Labels          map[string]string `expr:"labels"`
	AlertCount      int               `expr:"alert_count"`
	RootCause       string            `expr:"root_cause"`
}

func envOf(inc *triage.Incident) exprEnv {
	return exprEnv{Incident: incidentEnv{Key: inc.Key, Title: inc.Title, Status: string(inc.Status), Priority: inc.Priority,
		Severity: inc.Severity, CI: inc.CI, Service: inc.Service, AssignmentGroup: inc.AssignmentGroup, Project: inc.Project,
		Labels: inc.Labels, AlertCount: inc.AlertCount, RootCause: inc.RootCause.CI}}
}

// CompileCondition compiles a condition over `incident` (key, title,
// status, priority, severity, ci, service, assignment_group, jira_project,
// labels, alert_count, root_cause).
func CompileCondition(src string) (*vm.Program, error) {
	p, err := expr.Compile(src, expr.Env(exprEnv{}), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("condition %q: %w", src, err)
	}
	return p, nil
}

// Match runs a compiled condition on an incident; an error counts as no
// match and is returned for logging.
func Match(p *vm.Program, inc *triage.Incident) (bool, error) {
	out, err := expr.Run(p, envOf(inc))
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
