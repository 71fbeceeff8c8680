package scenario

import (
	"fmt"
	"maps"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
)

// Grouping is one way of grouping alerts that Quality compares.
type Grouping struct {
	Name string
	// New returns a fresh Grouper over the scenario's topology.
	New func(topo *correlate.Topology) correlate.Grouper
}

// Groupings are Triage's topology correlator, configured as the default
// config does, and two baselines: Alertmanager-style grouping by alertname
// within 5 minutes, and one incident per 5-minute window.
var Groupings = []Grouping{
	{"topology", NewCorrelator},
	{"alertname-5m", func(*correlate.Topology) correlate.Grouper {
		return correlate.NewLabelGrouper([]string{"alertname"}, 5*time.Minute)
	}},
	{"window-5m", func(*correlate.Topology) correlate.Grouper { return NewTimeWindowGrouper(5 * time.Minute) }},
}

// NewCorrelator is the topology correlator with the settings of the
// default config: a 10-minute window, 3 hops, group_by alertname and service.
func NewCorrelator(topo *correlate.Topology) correlate.Grouper {
	return correlate.NewCorrelator(topo, correlatorOptions())
}

func correlatorOptions() correlate.CorrelatorOptions {
	return correlate.CorrelatorOptions{
		Window:  10 * time.Minute,
		MaxHops: 3,
		GroupBy: []string{"alertname", "service"},
	}
}

// EngineOptions are the engine settings of the default config over topo.
func EngineOptions(topo *correlate.Topology) correlate.Options {
	return correlate.Options{ResolveAfter: 5 * time.Minute, ReopenWindow: 30 * time.Minute, Topology: topo}
}

// Normalized returns copies of events, normalised at their own Time, that
// an engine may own (their label and annotation maps are not shared).
func Normalized(events []triage.Event) ([]triage.Event, error) {
	out := make([]triage.Event, len(events))
	for i, ev := range events {
		ev.Labels = maps.Clone(ev.Labels)
		ev.Annotations = maps.Clone(ev.Annotations)
		if err := ev.Normalize(ev.Time); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		out[i] = ev
	}
	return out, nil
}

// Replay runs the scenario's events through an engine over topo that
// groups with g, on the clock of the events, and returns its incidents.
func Replay(sc *Scenario, topo *correlate.Topology, g correlate.Grouper) ([]triage.Incident, error) {
	events, err := Normalized(sc.Events)
	if err != nil {
		return nil, err
	}
	eng := correlate.NewEngine(EngineOptions(topo), g)
	return correlate.Replay(eng, events).Incidents(), nil
}

// Result is one grouping's incidents and scores on a scenario.
type Result struct {
	Name      string
	Incidents []triage.Incident
	Metrics   Metrics
}

// Quality replays the scenario with each of the Groupings and scores them.
func Quality(sc *Scenario) ([]Result, error) {
	topo, err := correlate.NewTopology(sc.CMDB)
	if err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(Groupings))
	for _, gr := range Groupings {
		incs, err := Replay(sc, topo, gr.New(topo))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", gr.Name, err)
		}
		out = append(out, Result{Name: gr.Name, Incidents: incs, Metrics: Evaluate(incs, sc)})
	}
	return out, nil
}
