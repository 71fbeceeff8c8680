package tracker

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/metrics/sla"
)

// Actor is the actor of the timeline entries the tracker writes.
const Actor = "sla"

// Crossing is what a timeline entry says about an SLA crossing.
type Crossing struct {
	Target sla.Target
	Kind   sla.Kind
	// Threshold is the fraction of the budget: a warning's, or 1 for a breach.
	Threshold float64
	// Policy names the SLA policy measured.
	Policy string
}

// FormatMessage is the timeline text of a crossing of policy p measured in
// cal; deadline is when the target's budget runs out (zero when unknown).
// It starts with a fixed prefix that ParseMessage reads back:
//
//	SLA warning: resolve target 4h 75% used (policy standard, calendar eu-business), due Mon 2026-11-30 12:00 CET
//	SLA breach: acknowledge target 15m breached at Wed 2026-11-25 10:15 UTC (policy p1-24x7, calendar 24x7)
//
// Times are in the calendar's zone. The ClickHouse exporter reads the
// target, "policy NAME" and "NN% used" from it.
func FormatMessage(c sla.Crossing, p *sla.Policy, cal *sla.Calendar, deadline time.Time) string {
	budget := p.Acknowledge
	if c.Target == sla.Resolve {
		budget = p.Resolve
	}
	where := fmt.Sprintf("(policy %s, calendar %s)", p.Name, cal.Name())
	if c.Kind == sla.Breach {
		return fmt.Sprintf("SLA breach: %s target %s breached at %s %s",
			c.Target, formatBudget(budget), formatTime(c.At, cal), where)
	}
	msg := fmt.Sprintf("SLA warning: %s target %s %s%% used %s",
		c.Target, formatBudget(budget), formatPercent(c.Threshold), where)
	if !deadline.IsZero() {
		msg += ", due " + formatTime(deadline, cal)
	}
	return msg
}

var (
	messageRE = regexp.MustCompile(`^SLA (warning|breach): (acknowledge|resolve) target \S+ (?:(\d+(?:\.\d+)?)% used|breached)\b`)
	policyRE  = regexp.MustCompile(`\(policy (.+), calendar [^()]*\)`)
)

// ParseMessage reads the crossing an SLA timeline entry records: an entry
// of kind sla_warning or sla_breach, by Actor, whose message starts with
// the prefix FormatMessage writes (and agrees with the kind). ok is false
// for any other entry.
func ParseMessage(e triage.TimelineEntry) (c Crossing, ok bool) {
	if e.Actor != Actor || (e.Kind != triage.KindSLAWarning && e.Kind != triage.KindSLABreach) {
		return c, false
	}
	m := messageRE.FindStringSubmatch(e.Message)
	if m == nil {
		return c, false
	}
	c.Target = sla.Target(m[2])
	switch {
	case m[1] == "breach" && e.Kind == triage.KindSLABreach && m[3] == "":
		c.Kind, c.Threshold = sla.Breach, 1
	case m[1] == "warning" && e.Kind == triage.KindSLAWarning && m[3] != "":
		pct, err := strconv.ParseFloat(m[3], 64)
		if err != nil || !(pct > 0 && pct < 100) {
			return Crossing{}, false
		}
		c.Kind, c.Threshold = sla.Warning, pct/100
	default:
		return Crossing{}, false
	}
	if pm := policyRE.FindStringSubmatch(e.Message); pm != nil {
		c.Policy = pm[1]
	}
	return c, true
}

// formatPercent writes a fraction as a percentage with at most two
// decimals: 0.75 → "75", 0.875 → "87.5".
func formatPercent(f float64) string {
	return strconv.FormatFloat(math.Round(f*1e4)/100, 'f', -1, 64)
}

// formatBudget writes a budget as the configuration does: "15m", "4h",
// "1h30m", "3d" for whole days of open time.
func formatBudget(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// formatTime writes an instant in the calendar's zone, with seconds only
// when there are any.
func formatTime(t time.Time, cal *sla.Calendar) string {
	t = t.In(cal.Location())
	if t.Second() != 0 || t.Nanosecond() != 0 {
		return t.Format("Mon 2006-01-02 15:04:05 MST")
	}
	return t.Format("Mon 2006-01-02 15:04 MST")
}
