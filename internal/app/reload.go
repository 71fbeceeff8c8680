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

	mu     sync.Mutex        // one reload or import at a time
	stamps map[string]string // what the watched files looked like at the last reload, by kind

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
	r.stamps = map[string]string{"cmdb": r.stamp("cmdb"), "rules": r.stamp("rules")}
	// Uploads a crash interrupted between write and rename.
	left, _ := filepath.Glob(filepath.Join(cfg.DataDir, ".cmdb-*"))
	for _, f := range left {
		_ = os.Remove(f)
	}
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
	r.stamps = map[string]string{"cmdb": r.stamp("cmdb"), "rules": r.stamp("rules")}
	s, err := LoadSetup(r.cfg, true)
	if err != nil {
		r.success.WithLabelValues(trigger).Set(0)
		r.log.Error("reload failed; the previous CMDB and rules stay in use", "trigger", trigger, "err", err)
		return err
	}
	return r.apply(ctx, s, trigger, nil)
}

// apply swaps s into the engine, then runs commit (if any) and makes s the
// setup the API shows. The swap is not cancellable once asked: the engine
// and r.cur must not disagree.
func (r *reloader) apply(ctx context.Context, s *Setup, trigger string, commit func(*Setup)) error {
	if err := r.svc.Reconfigure(context.WithoutCancel(ctx), s.Topology, s.rules(), s.NewGrouper(r.cfg)); err != nil {
		r.success.WithLabelValues(trigger).Set(0)
		return fmt.Errorf("swapping in the new setup: %w", err)
	}
	if commit != nil {
		commit(s)
	}
	r.swapped(s, trigger)
	cis := 0
	if s.Topology != nil {
		cis = s.Topology.Len()
	}
	r.log.Info("reloaded", "trigger", trigger, "cmdb", s.TopologySource, "cis", cis, "rules", s.Rules.Len())
	return nil
}

// Import implements server.CMDB: PUT /api/v1/cmdb (the server lets one
// upload in at a time). The new topology is written next to its final
// place, swapped into the engine, and only then renamed into place, so
// what the data directory holds is what the engine uses.
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
	tmp, err := writeTemp(path, data)
	if err != nil {
		return nil, fmt.Errorf("keeping the imported CMDB: %w", err)
	}
	defer os.Remove(tmp) // gone after the rename; removed on failure
	next := *r.cur.Load()
	next.Topology, next.TopologySource = topo, path
	err = r.apply(ctx, &next, "api", func(s *Setup) {
		if err := renameSynced(tmp, path); err != nil {
			r.log.Error("the imported CMDB is in use but not kept: a restart goes back to the previous one", "err", err)
			s.TopologySource = "PUT /api/v1/cmdb (not kept: " + err.Error() + ")"
		}
	})
	if err != nil {
		return nil, err
	}
	return topo, nil
}

// Run checks the CMDB file every cmdb.reload_interval and the rule files
// every rules.reload_interval, and reloads when one changed, until ctx
// ends. A zero interval leaves that kind to SIGHUP.
func (r *reloader) Run(ctx context.Context) {
	tick := func(d time.Duration) <-chan time.Time {
		if d <= 0 {
			return nil
		}
		t := time.NewTicker(d)
		context.AfterFunc(ctx, t.Stop)
		return t.C
	}
	cmdb, rules := tick(r.cfg.CMDB.ReloadInterval.D()), tick(r.cfg.Rules.ReloadInterval.D())
	if r.cfg.CMDB.File == "" {
		cmdb = nil
	}
	if len(r.cfg.Rules.Files) == 0 {
		rules = nil
	}
	for {
		kind := ""
		select {
		case <-ctx.Done():
			return
		case <-cmdb:
			kind = "cmdb"
		case <-rules:
			kind = "rules"
		}
		r.mu.Lock()
		changed := r.stamp(kind) != r.stamps[kind]
		r.mu.Unlock()
		if changed {
			_ = r.Reload(ctx, "file change") // logged
		}
	}
}

// stamp summarises the size and modification time of the CMDB file
// ("cmdb") or of every file the rule globs match now ("rules").
func (r *reloader) stamp(kind string) string {
	var files []string
	if kind == "cmdb" && r.cfg.CMDB.File != "" {
		files = append(files, r.cfg.CMDB.File)
	}
	if kind == "rules" {
		for _, p := range r.cfg.Rules.Files {
			m, _ := filepath.Glob(p)
			if len(m) == 0 {
				m = []string{p}
			}
			files = append(files, m...)
		}
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

// writeTemp writes data, synced, to a new file beside path.
func writeTemp(path string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cmdb-*")
	if err != nil {
		return "", err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// renameSynced moves tmp to path and syncs the directory.
func renameSynced(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
