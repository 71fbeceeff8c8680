package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/correlate/problems"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/metrics/clickhouse"
	"github.com/triage-dev/triage/metrics/kpi"
	"github.com/triage-dev/triage/metrics/sla"
	"github.com/triage-dev/triage/metrics/sla/tracker"
)

// kpiOptions are the XLA weights and targets of the config.
func kpiOptions(cfg *config.Config) kpi.Options {
	o := kpi.Options{SLA: len(cfg.SLA.Policies) > 0, Weights: map[string]float64{}, Targets: map[string]kpi.Target{}}
	for name, s := range cfg.XLA.Services {
		if s.Weight > 0 {
			o.Weights[name] = s.Weight
		}
		if s.MaxImpactMinutes > 0 || s.MinSatisfaction > 0 {
			o.Targets[name] = kpi.Target{MaxImpactMinutes: s.MaxImpactMinutes, MinSatisfaction: s.MinSatisfaction}
		}
	}
	return o
}

// newExporter builds the ClickHouse export, or nil when it is off. It
// does not connect: ClickHouse may be down when the daemon starts.
func newExporter(cfg *config.Config, store *correlate.Store, problems func() ([]clickhouse.ProblemRow, error),
	getenv func(string) string, now func() time.Time, log *slog.Logger, reg prometheus.Registerer) (*clickhouse.Exporter, error) {
	ch := cfg.ClickHouse
	if !ch.Enabled() {
		return nil, nil
	}
	password, err := ch.Password(getenv)
	if err != nil {
		return nil, err
	}
	if cfg.Store.EventRetention <= 0 {
		log.Warn("store.event_retention is 0: the ClickHouse events table stays empty (incidents, changes, SLA, feedback and problems are exported)")
	}
	return clickhouse.NewExporter(clickhouse.ExporterOptions{
		Writer:     clickhouse.Options{Addr: ch.Addr, Database: ch.Database, Username: ch.Username, Password: password, BatchRows: ch.BatchRows},
		Source:     store,
		CursorPath: filepath.Join(cfg.DataDir, "clickhouse-export.json"),
		Problems:   problems,
		Weights:    kpiOptions(cfg).Weights,
		Interval:   ch.Interval.D(),
		Now:        now,
		Logger:     log,
		Registry:   reg,
	})
}

// runIf runs f in a goroutine when it is not nil; the returned channel
// closes when it has returned.
func runIf(ctx context.Context, f func(context.Context) error, log *slog.Logger, what string) <-chan struct{} {
	done := make(chan struct{})
	if f == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		if err := f(ctx); err != nil {
			log.Error(what+" stopped", "err", err)
		}
	}()
	return done
}

// newProblems opens the problem tracker (data_dir/problems.db), or nil
// when problem management is off.
func newProblems(cfg *config.Config, svc *correlate.Service, store *correlate.Store, now func() time.Time,
	log *slog.Logger, reg prometheus.Registerer) (*problems.Tracker, error) {
	p := cfg.Problems
	if !p.Enabled {
		return nil, nil
	}
	return problems.Open(problems.Options{
		Path: filepath.Join(cfg.DataDir, "problems.db"), Source: store, Recorder: svc,
		Threshold: p.Threshold, Window: p.Window.D(), By: p.By, Now: now, Logger: log, Registry: reg,
	})
}

// problemRows lists the problems as ClickHouse rows.
func problemRows(t *problems.Tracker) func() ([]clickhouse.ProblemRow, error) {
	if t == nil {
		return nil
	}
	return func() ([]clickhouse.ProblemRow, error) {
		all, err := t.All()
		if err != nil {
			return nil, err
		}
		rows := make([]clickhouse.ProblemRow, len(all))
		for i, p := range all {
			rows[i] = clickhouse.ProblemRow{ID: p.ID, Key: p.Key, Title: p.Title, Status: p.Status, KnownError: p.KnownError,
				Workaround: p.Workaround, RootCI: p.RootCI, Signature: p.Signature, IncidentCount: uint64(p.IncidentCount),
				OpenedAt: p.OpenedAt, UpdatedAt: p.UpdatedAt, Version: p.Version}
		}
		return rows, nil
	}
}

// newSLATracker builds the SLA tracker, or nil without SLA policies.
func newSLATracker(cfg *config.Config, svc *correlate.Service, store *correlate.Store, now func() time.Time,
	log *slog.Logger, reg prometheus.Registerer) (*tracker.Tracker, error) {
	if len(cfg.SLA.Policies) == 0 {
		return nil, nil
	}
	set, err := sla.Build(cfg.SLA)
	if err != nil {
		return nil, fmt.Errorf("sla: %w", err)
	}
	return tracker.New(tracker.Options{Set: set, Source: store, Recorder: svc, Now: now, Logger: log, Registry: reg})
}

// problemCounts fills the problem figures of a KPI report.
func problemCounts(t *problems.Tracker, rep *kpi.Report) error {
	if t == nil {
		return nil
	}
	all, err := t.All()
	if err != nil {
		return err
	}
	pc := &kpi.Problems{}
	for _, p := range all {
		switch p.Status {
		case problems.StatusOpen:
			pc.Open++
		case problems.StatusKnownError:
			pc.Open++
			pc.KnownErrors++
		}
		if !p.OpenedAt.Before(rep.From) && p.OpenedAt.Before(rep.To) {
			pc.Opened++
		}
	}
	rep.Problems = pc
	return nil
}
