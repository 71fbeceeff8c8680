package problems

import (
	"slices"
	"strconv"
	"strings"

	"github.com/triage-dev/triage"
)

// Keys are the recurrence keys of an incident; an empty one does not apply.
type Keys struct {
	// RootCI is the CI of the incident's root cause, or else its CI.
	RootCI string `json:"root_ci,omitempty"`
	// Signature is what alerted; see Signature.
	Signature string `json:"signature,omitempty"`
}

// IncidentKeys computes the recurrence keys of an incident read in full
// (with its alerts).
func IncidentKeys(inc *triage.Incident) Keys {
	k := Keys{RootCI: inc.RootCause.CI, Signature: Signature(inc)}
	if k.RootCI == "" {
		k.RootCI = inc.CI
	}
	return k
}

// Signature is a stable signature of what alerted in an incident: the
// alertname labels of the alerts it opened with (those first seen at its
// opened_at, usually the one alert that opened it; all its alerts when
// none is), deduplicated, sorted and joined by "+", then "@" and the
// incident's service when it has one. For example "HighErrorRate@orders",
// "DiskFull+HostDown@billing", or "HostDown" without a service. A name or
// service that is not made only of letters, digits and _ : . - is written
// as a Go quoted string, so that different sets never read the same.
// Alerts joining later do not change it, so an incident keeps its
// signature however long it lives. An incident none of whose alerts has an
// alertname has no signature ("").
func Signature(inc *triage.Incident) string {
	var names []string
	collect := func(first bool) {
		for i := range inc.Alerts {
			a := &inc.Alerts[i]
			if first && !a.FirstSeen.Equal(inc.OpenedAt) {
				continue
			}
			if n := a.Labels["alertname"]; n != "" {
				names = append(names, n)
			}
		}
	}
	collect(true)
	if len(names) == 0 {
		collect(false)
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	names = slices.Compact(names)
	for i, n := range names {
		names[i] = sigQuote(n)
	}
	sig := strings.Join(names, "+")
	if inc.Service != "" {
		sig += "@" + sigQuote(inc.Service)
	}
	return sig
}

func sigQuote(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == ':' || r == '.' || r == '-') {
			return strconv.Quote(s)
		}
	}
	return s
}

// keyString is a recurrence key as the tracker indexes it.
func keyString(kind, value string) string { return kind + ":" + value }

// kinds are the key kinds in use, root_ci first: it is preferred.
func (t *Tracker) kinds() []string {
	var out []string
	for _, k := range []string{ByRootCI, BySignature} {
		if slices.Contains(t.opts.By, k) {
			out = append(out, k)
		}
	}
	return out
}

func (k Keys) get(kind string) string {
	if kind == ByRootCI {
		return k.RootCI
	}
	return k.Signature
}
