package app

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/config"
)

const reloadCMDB = "cis:\n  - {id: host-1}\n  - {id: db-1}\nrelations:\n  - {from: db-1, to: host-1, type: runs_on}\n"

func newTestReloader(t *testing.T, cfg *config.Config) (*reloader, *correlate.Service, *correlate.Store) {
	t.Helper()
	st, err := correlate.OpenStore(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	setup, err := LoadSetup(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := correlate.NewService(correlate.ServiceOptions{Store: st, WALDir: correlate.WALDir(cfg.DataDir),
		NewEngine: func() *correlate.Engine { return setup.NewEngine(cfg) }})
	if err != nil {
		t.Fatal(err)
	}
	return newReloader(cfg, svc, setup, slog.New(slog.DiscardHandler), prometheus.NewRegistry()), svc, st
}

func runService(t *testing.T, svc *correlate.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// An import whose client gives up while the engine is busy still completes
// as one: the engine, the API and the data directory agree.
func TestImportIsAllOrNothing(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	r, svc, st := newTestReloader(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := r.Import(ctx, []byte(reloadCMDB)); done <- err }()
	<-ctx.Done() // the client gave up; the service was not even running
	runService(t, svc)
	if err := <-done; err != nil {
		t.Fatalf("import: %v", err)
	}
	if topo := r.Topology(); topo == nil || topo.Len() != 2 {
		t.Fatalf("the API shows %v, want the imported 2 CIs", topo)
	}
	if _, err := os.Stat(ImportedCMDB(cfg.DataDir)); err != nil {
		t.Fatalf("the import is not kept: %v", err)
	}
	ev := triage.Event{Labels: map[string]string{"alertname": "PostgresDown", "ci": "db-1"}}
	if err := ev.Normalize(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := svc.Submit(context.Background(), []triage.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if inc, err := st.Incident(1); err != nil || inc.Alerts[0].Binding == nil {
		t.Fatalf("the engine does not use the imported CMDB: %v %+v", err, inc)
	}
	if _, err := r.Import(context.Background(), nil); err == nil {
		t.Fatal("an empty import was accepted")
	}
	if r.Topology().Len() != 2 {
		t.Fatal("a refused import changed the topology")
	}
	entries, _ := os.ReadDir(cfg.DataDir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == "" && e.Name()[0] == '.' {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// Rule files are watched on their own interval: a change is picked up
// without a signal.
func TestRuleFileChangeReloads(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	write := func(s string) {
		if err := os.WriteFile(rules, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rules: []\n")
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Rules.Files = []string{rules}
	cfg.Rules.ReloadInterval = config.Duration(10 * time.Millisecond)
	cfg.CMDB.ReloadInterval = 0
	r, svc, _ := newTestReloader(t, cfg)
	runService(t, svc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	write("rules:\n  - {name: drop-watchdog, kind: drop, if: 'alert.labels.alertname == \"Watchdog\"'}\n")
	deadline := time.Now().Add(10 * time.Second)
	for r.cur.Load().Rules.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the changed rule file was not reloaded in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
