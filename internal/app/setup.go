package app

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/rules"
)

// Setup is what a reload can change: the CMDB topology and the rules.
// It is immutable; a reload builds a new one.
type Setup struct {
	Topology *correlate.Topology // nil without a CMDB
	// TopologySource is the file the topology came from.
	TopologySource string
	Rules          *rules.Set // nil without rule files
}

// ImportedCMDB is where PUT /api/v1/cmdb keeps the imported CMDB, as it
// was sent (YAML or JSON).
func ImportedCMDB(dataDir string) string { return filepath.Join(dataDir, "imported-cmdb.yaml") }

// LoadSetup reads the CMDB and the rule files a config references. Without
// cmdb.file, the CMDB last imported over the API (in the data directory)
// is used when there is one. Errors carry file:line.
func LoadSetup(cfg *config.Config, useImported bool) (*Setup, error) {
	s := &Setup{}
	var errs []error
	file := cfg.CMDB.File
	if file == "" && useImported {
		if _, err := os.Stat(ImportedCMDB(cfg.DataDir)); err == nil {
			file = ImportedCMDB(cfg.DataDir)
		}
	}
	if file != "" {
		topo, err := correlate.LoadTopology(file)
		if err != nil {
			errs = append(errs, err)
		}
		s.Topology, s.TopologySource = topo, file
	}
	if len(cfg.Rules.Files) > 0 {
		rs, err := rules.Load(cfg.Rules.Files)
		if err != nil {
			errs = append(errs, err)
		}
		s.Rules = rs
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// CheckReferences reports maintenance windows naming CIs the CMDB does
// not have (file:line). `triage check` fails on it; serve only warns, so
// that a CMDB import removing a CI does not stop the rules from loading.
func (s *Setup) CheckReferences() error {
	if s.Rules == nil || s.Topology == nil {
		return nil
	}
	return s.Rules.CheckCIs(func(id string) bool { _, ok := s.Topology.CI(id); return ok })
}

func (s *Setup) rules() correlate.Rules {
	if s.Rules == nil {
		return nil // not a nil *rules.Set in a non-nil interface
	}
	return s.Rules
}

// EngineOptions are the engine settings of a config with this setup.
func (s *Setup) EngineOptions(cfg *config.Config) correlate.Options {
	k := cfg.Correlation
	return correlate.Options{
		ResolveAfter: k.ResolveAfter.D(),
		ReopenWindow: k.ReopenWindow.D(),
		CILabels:     k.CILabels,
		Topology:     s.Topology,
		Rules:        s.rules(),
		MinAlerts:    k.MinAlerts,
		Flapping:     correlate.Flapping{Changes: k.Flapping.Changes, Window: k.Flapping.Window.D()},
		Priority:     priorityMatrix(k.Priority),
	}
}

func priorityMatrix(p config.PriorityMatrix) *correlate.PriorityMatrix {
	if p.Matrix == nil {
		return nil
	}
	return &correlate.PriorityMatrix{TierAttribute: p.TierAttribute, Tiers: p.Tiers, Services: p.Services, Urgency: p.Urgency, Matrix: p.Matrix}
}

// NewGrouper builds the correlator of a config with this setup.
func (s *Setup) NewGrouper(cfg *config.Config) correlate.Grouper {
	k := cfg.Correlation
	return correlate.NewCorrelator(s.Topology, correlate.CorrelatorOptions{
		Window:    k.Window.D(),
		MaxHops:   k.MaxHops,
		Relations: k.Relations,
		GroupBy:   k.GroupBy,
		MaxAge:    k.MaxIncidentAge.D(),
		Rules:     s.rules(),
	})
}

// NewEngine builds an empty engine of a config with this setup; `serve`
// and `replay` run the same one.
func (s *Setup) NewEngine(cfg *config.Config) *correlate.Engine {
	return correlate.NewEngine(s.EngineOptions(cfg), s.NewGrouper(cfg))
}
