package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/server"
)

// reloader owns the Setup in use. A reload builds a new Setup from the
// files, and only when all of it is valid swaps it into the engine; a bad
// file keeps the old one and says why (file:line) in the log and metrics.
type reloader struct {
	cfg *config.Config
	svc *correlate.Service
	log *slog.Logger
	cur atomic.Pointer[Setup]

	mu     sync.Mutex // one reload or import at a time
	stamps string     // what the watched files looked like at the last reload

	success    *prometheus.GaugeVec
	lastOK     *prometheus.GaugeVec
	cis, rules prometheus.Gauge
}

func newReloader(cfg *config.Config, svc *correlate.Service, s *Setup, log *slog.Logger, reg prometheus.Registerer) *reloader {
	f := promauto.With(reg)
	r := &reloader{
		cfg: cfg, svc: svc, log: log,
		success: f.NewGaugeVec(prometheus.GaugeOpts{Name: "triage_reload_success",
			Help: "1 when the last reload of the CMDB and rules succeeded, 0 when it failed (the previous ones stay in use)."}, []string{"trigger"}),
		lastOK: f.NewGaugeVec(prometheus.GaugeOpts{Name: "triage_reload_last_success_timestamp_seconds",
			Help: "When the CMDB and rules were last loaded successfully."}, []string{"trigger"}),
		cis: f.NewGauge(prometheus.GaugeOpts{Name: "triage_cmdb_cis",
			Help: "Configuration items in the CMDB in use."}),
		rules: f.NewGauge(prometheus.GaugeOpts{Name: "triage_rules_loaded",
			Help: "Rules in use."}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "triage_rules_evaluation_errors",
		Help: "Run-time failures of the rules in use (counted as no match), since they were loaded."},
		func() float64 { return float64(r.cur.Load().Rules.Errors()) })
	r.stamps = r.stampFiles()
	r.swapped(s, "start")
	return r
}

func (r *reloader) swapped(s *Setup, trigger string) {
	if err := s.CheckReferences(); err != nil {
		r.log.Warn("rules name CIs the CMDB does not have", "err", err)
	}
	r.cur.Store(s)
	r.success.WithLabelValues(trigger).Set(1)
	r.lastOK.WithLabelValues(trigger).SetToCurrentTime()
	n := 0
	if s.Topology != nil {
		n = s.Topology.Len()
	}
	r.cis.Set(float64(n))
	r.rules.Set(float64(s.Rules.Len()))
}

// Topology implements server.CMDB.
func (r *reloader) Topology() *correlate.Topology { return r.cur.Load().Topology }

// Reload rebuilds the Setup from the files and swaps it in.
func (r *reloader) Reload(ctx context.Context, trigger string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stamps = r.stampFiles()
	s, err := LoadSetup(r.cfg, true)
	if err != nil {
		r.success.WithLabelValues(trigger).Set(0)
		r.log.Error("reload failed; the previous CMDB and rules stay in use", "trigger", trigger, "err", err)
		return err
	}
	return r.apply(ctx, s, trigger)
}

func (r *reloader) apply(ctx context.Context, s *Setup, trigger string) error {
	if err := r.svc.Reconfigure(ctx, s.Topology, s.rules(), s.NewGrouper(r.cfg)); err != nil {
		r.success.WithLabelValues(trigger).Set(0)
		return fmt.Errorf("swapping in the new setup: %w", err)
	}
	r.swapped(s, trigger)
	cis := 0
	if s.Topology != nil {
		cis = s.Topology.Len()
	}
	r.log.Info("reloaded", "trigger", trigger, "cmdb", s.TopologySource, "cis", cis, "rules", s.Rules.Len())
	return nil
}

// Import implements server.CMDB: PUT /api/v1/cmdb.
func (r *reloader) Import(ctx context.Context, data []byte) (*correlate.Topology, error) {
	if r.cfg.CMDB.File != "" {
		return nil, server.ErrCMDBManaged
	}
	topo, err := correlate.ParseTopology("body", data)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	path := ImportedCMDB(r.cfg.DataDir)
	if err := writeFileAtomic(path, data); err != nil {
		return nil, fmt.Errorf("keeping the imported CMDB: %w", err)
	}
	next := *r.cur.Load()
	next.Topology, next.TopologySource = topo, path
	if err := r.apply(ctx, &next, "api"); err != nil {
		return nil, err
	}
	return topo, nil
}

// Run checks the watched files every interval and reloads when one
// changed, until ctx ends. With a zero interval it only waits.
func (r *reloader) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		changed := r.stampFiles() != r.stamps
		r.mu.Unlock()
		if changed {
			_ = r.Reload(ctx, "file change") // logged
		}
	}
}

// stampFiles summarises the size and modification time of the CMDB file
// and every file the rule globs match now.
func (r *reloader) stampFiles() string {
	var files []string
	if r.cfg.CMDB.File != "" {
		files = append(files, r.cfg.CMDB.File)
	}
	for _, p := range r.cfg.Rules.Files {
		m, _ := filepath.Glob(p)
		if len(m) == 0 {
			m = []string{p}
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(h, "%s missing\n", f)
			continue
		}
		fmt.Fprintf(h, "%s %d %d\n", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cmdb-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
