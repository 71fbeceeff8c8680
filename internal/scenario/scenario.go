// Package scenario generates cascading-failure scenarios with ground truth
// and measures how well a correlation engine groups them.
//
// A Scenario is a CMDB topology (switches, hosts, databases, caches,
// queues, services), a stream of Alertmanager-style events and the truth
// about them: which fault every alert belongs to and which CI each fault
// started at. Generate builds one deterministically from a seed; Evaluate
// scores the incidents an engine made from the events against the truth
// (pairwise precision, recall and F1, compression, root-cause hit rate).
//
// Ground-truth groups are of three kinds, named by their id prefix:
//
//   - fault-N: a failure of one root CI and the failures it causes on the
//     CIs that depend on it, up to three hops away.
//   - flap-N: one alert that fires and resolves repeatedly; it is its own
//     group, unrelated to any fault.
//   - noise-N: one unrelated alert, on a CI away from every fault or with
//     no CI label at all; it is its own group.
//
// Groups that are active at the same time are placed so that none can be
// mistaken for another: no CI a group may affect is within three hops, up
// or down the relations, of a CI another concurrent group may affect. Two
// groups may still share a common ancestor (two services on one host) or a
// common dependent; telling those apart is the engine's job.
package scenario

import (
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
)

// Config sizes a scenario. Zero fields take defaults (see Generate).
type Config struct {
	// Seed makes the scenario: the same Config gives the same Scenario.
	Seed uint64

	// CIs is the target number of CIs; per-type counts left zero are
	// scaled from it (about 5% switches, 43% hosts, 35% services, the rest
	// databases, caches and queues). With CIs zero only the per-type
	// counts are used, and with those all zero too, CIs is 200.
	CIs int
	// Per-type counts; a non-zero count wins over the share from CIs.
	CoreSwitches, AccessSwitches, Hosts, Databases, Caches, Queues, Services int

	// Faults is the number of cascading faults.
	Faults int
	// Concurrent is the most faults active at one time.
	Concurrent int
	// Noise is the number of unrelated single alerts.
	Noise int
	// Flapping is the number of alerts that fire and resolve repeatedly.
	Flapping int
	// LateRoot is the chance that a fault's root alerts only after its
	// first dependent (a slower detection on the root); 0 means 0.1.
	LateRoot float64
	// SilentRoot is the chance that a fault's root sends no alert at all
	// (an unmonitored CI): its dependents alert, nothing names the cause.
	SilentRoot float64

	// Start is when the scenario begins; Duration is the span over which
	// faults, noise and flapping start (the last ones end after it).
	Start    time.Time
	Duration time.Duration
}

// Small is a scenario of about 200 CIs, 40 faults and 1–2k events.
func Small() Config {
	return Config{
		Seed:       1,
		CIs:        200,
		Faults:     40,
		Concurrent: 4,
		Noise:      30,
		Flapping:   6,
		Start:      time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC),
		Duration:   5 * time.Hour,
	}
}

// Hard is Small with roots that alert late three times as often and, for
// 15% of the faults, not at all: what topology cannot fully fix.
func Hard() Config {
	c := Small()
	c.LateRoot = 0.3
	c.SilentRoot = 0.15
	return c
}

// Large is a scenario of 10k CIs with a storm of concurrent faults.
func Large() Config {
	return Config{
		Seed:       1,
		CIs:        10000,
		Faults:     600,
		Concurrent: 30,
		Noise:      500,
		Flapping:   60,
		Start:      time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC),
		Duration:   8 * time.Hour,
	}
}

// Scenario is a topology, the events sent about its failures, and the truth.
type Scenario struct {
	CMDB correlate.CMDB
	// Events are sorted by Time; each has its Fingerprint set.
	Events []triage.Event
	// Truth maps every alert's fingerprint to its ground-truth group:
	// "fault-N", "flap-N" or "noise-N".
	Truth map[string]string
	// Roots maps every fault id to the id of the CI it started at.
	Roots map[string]string
	// AlertCI maps every alert's fingerprint to the id of the CI it is
	// about; alerts with no CI label are absent.
	AlertCI map[string]string
}

// Groups lists the ground-truth group ids in a stable order: faults, flaps,
// noise, each by number.
func (s *Scenario) Groups() []string {
	seen := make(map[string]bool)
	var out []string
	for _, g := range s.Truth {
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	sortGroupIDs(out)
	return out
}
