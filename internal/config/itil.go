package config

import (
	"errors"
	"fmt"
	"net"

	"github.com/triage-dev/triage/metrics/clickhouse"
	"github.com/triage-dev/triage/metrics/sla"
)

// XLA configures the experience side: per-service user-impact weights and
// targets.
type XLA struct {
	Services map[string]XLAService `yaml:"services"`
}

// XLAService is one service's weight and XLA targets (0: none).
type XLAService struct {
	// Weight multiplies the service's incident minutes into user-impact
	// minutes (default 1).
	Weight           float64 `yaml:"weight"`
	MaxImpactMinutes float64 `yaml:"max_impact_minutes"`
	MinSatisfaction  float64 `yaml:"min_satisfaction"`
}

// Problems configures problem detection: an incident recurring Threshold
// times within Window (same root CI or same signature) opens a problem.
type Problems struct {
	Enabled   bool     `yaml:"enabled"`
	Threshold int      `yaml:"threshold"`
	Window    Duration `yaml:"window"`
	By        []string `yaml:"by"`
}

// ClickHouse configures the KPI export; without addr it is off. The
// password comes from password_file or TRIAGE_CLICKHOUSE_PASSWORD.
type ClickHouse struct {
	Addr         string   `yaml:"addr"`
	Database     string   `yaml:"database"`
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"`
	BatchRows    int      `yaml:"batch_rows"`
	Interval     Duration `yaml:"interval"`
}

// Password reads the ClickHouse password: password_file, else the
// TRIAGE_CLICKHOUSE_PASSWORD environment variable.
func (c ClickHouse) Password(getenv func(string) string) (string, error) {
	p, err := ReadSecret(c.PasswordFile, "TRIAGE_CLICKHOUSE_PASSWORD", getenv)
	if err != nil {
		return "", fmt.Errorf("clickhouse.password_file: %w", err)
	}
	return p, nil
}

// Enabled reports whether the ClickHouse export is configured.
func (c ClickHouse) Enabled() bool { return c.Addr != "" }

func validLevel(l string) bool { return l == "low" || l == "medium" || l == "high" }

func (c *Config) validateITIL(add func(path, format string, args ...any)) {
	pm := c.Correlation.Priority
	if pm.Matrix != nil {
		for _, imp := range []string{"low", "medium", "high"} {
			for _, urg := range []string{"low", "medium", "high"} {
				p := pm.Matrix[imp][urg]
				if len(p) != 2 || p[0] != 'P' || p[1] < '1' || p[1] > '5' {
					add("correlation.priority.matrix."+imp, "impact %s × urgency %s: %q is not P1..P5 (every cell must be set)", imp, urg, p)
				}
			}
		}
		for imp := range pm.Matrix {
			if !validLevel(imp) {
				add("correlation.priority.matrix."+imp, "%q is not low, medium or high", imp)
			}
		}
	} else if len(pm.Tiers)+len(pm.Services)+len(pm.Urgency) > 0 {
		add("correlation.priority", "tiers, services and urgency need a matrix")
	}
	for k, l := range pm.Tiers {
		if !validLevel(l) {
			add("correlation.priority.tiers."+k, "%q is not low, medium or high", l)
		}
	}
	for l, n := range pm.Services {
		if !validLevel(l) || n < 1 || n > 64 {
			add("correlation.priority.services."+l, "want low, medium or high: a number of services from 1 to 64")
		}
	}
	for sev, l := range pm.Urgency {
		switch sev {
		case "critical", "error", "warning", "info":
		default:
			add("correlation.priority.urgency."+sev, "%q is not a severity (critical, error, warning, info)", sev)
		}
		if !validLevel(l) {
			add("correlation.priority.urgency."+sev, "%q is not low, medium or high", l)
		}
	}
	for imp, row := range pm.Matrix {
		for urg := range row {
			if !validLevel(urg) {
				add("correlation.priority.matrix."+imp+"."+urg, "%q is not low, medium or high", urg)
			}
		}
	}
	if pm.Matrix != nil { // more impact or urgency never lowers the priority
		lv := []string{"low", "medium", "high"}
		for i := range lv {
			for j := range lv {
				p := pm.Matrix[lv[i]][lv[j]]
				for _, q := range []string{pm.Matrix[lv[min(i+1, 2)]][lv[j]], pm.Matrix[lv[i]][lv[min(j+1, 2)]]} {
					if p != "" && q != "" && q > p {
						add("correlation.priority.matrix."+lv[i], "not monotone: a higher impact or urgency than %s × %s gives %s, less urgent than %s", lv[i], lv[j], q, p)
					}
				}
			}
		}
	}
	if err := c.SLA.Validate(nil); err != nil {
		var es sla.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				add("sla."+e.Path, "%s", e.Msg)
			}
		} else {
			add("sla", "%v", err)
		}
	}
	for name, s := range c.XLA.Services {
		p := "xla.services." + name
		if s.Weight < 0 {
			add(p+".weight", "must not be negative")
		}
		if s.Weight == 0 && s.MaxImpactMinutes == 0 && s.MinSatisfaction == 0 {
			add(p, "set weight (default 1 when only targets are set), max_impact_minutes or min_satisfaction")
		}
		if s.MaxImpactMinutes < 0 {
			add(p+".max_impact_minutes", "must not be negative")
		}
		if s.MinSatisfaction != 0 && (s.MinSatisfaction < 1 || s.MinSatisfaction > 5) {
			add(p+".min_satisfaction", "%v is not a score between 1 and 5", s.MinSatisfaction)
		}
	}
	if c.Problems.Threshold < 2 {
		add("problems.threshold", "must be at least 2 (a problem is a recurrence)")
	}
	if c.Problems.Window <= 0 {
		add("problems.window", "must be positive")
	}
	for i, b := range c.Problems.By {
		if b != "root_ci" && b != "signature" {
			add(fmt.Sprintf("problems.by.%d", i), "%q is not root_ci or signature", b)
		}
	}
	if ch := c.ClickHouse; ch.Enabled() {
		if _, _, err := net.SplitHostPort(ch.Addr); err != nil {
			add("clickhouse.addr", "%q is not host:port: %v", ch.Addr, err)
		}
		if !clickhouse.ValidIdent(ch.Database) {
			add("clickhouse.database", "%q is not a database name (letters, digits, underscores)", ch.Database)
		}
		if ch.BatchRows < 1000 || ch.BatchRows > 1_000_000 {
			add("clickhouse.batch_rows", "%d is not between 1000 and 1000000", ch.BatchRows)
		}
		if ch.Interval <= 0 {
			add("clickhouse.interval", "must be positive")
		}
	}
}
