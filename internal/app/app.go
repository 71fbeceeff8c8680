// Package app wires Triage's components into the daemon that `triage serve`
// runs. Run is embeddable: tests start the real daemon in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/ingest"
	"github.com/triage-dev/triage/ingest/logs"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/kafkaauth"
	"github.com/triage-dev/triage/internal/server"
	"github.com/triage-dev/triage/metrics/kpi"
	"github.com/triage-dev/triage/rules"
)

// Options configure one run of the daemon.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Listening, when set, is called with the bound address once the HTTP
	// server accepts connections (useful with a ":0" listen address).
	Listening func(addr net.Addr)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Getenv reads the environment (for TRIAGE_AUTH_TOKEN); os.Getenv when nil.
	Getenv func(string) string
	// Reload asks for the CMDB and rule files to be read again (SIGHUP).
	Reload <-chan struct{}
}

// Run serves until ctx is cancelled, then shuts down in order: stop taking
// requests, let in-flight ones finish, commit what was queued, close the
// store. It returns the first error that stopped it.
func Run(ctx context.Context, opts Options) error {
	cfg, log := opts.Config, opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	token, err := cfg.Auth.ResolveToken(opts.Getenv)
	if err != nil {
		return err
	}
	if token == "" && !cfg.Auth.AllowUnauthenticated && !isLoopback(cfg.Listen) {
		return fmt.Errorf("refusing to listen on %s without an auth token: set auth.token_file or TRIAGE_AUTH_TOKEN, "+
			"or auth.allow_unauthenticated: true", cfg.Listen)
	}

	if cfg.HTTP.Pprof && token == "" && !isLoopback(cfg.Listen) {
		log.Warn("http.pprof serves profiles (which show alert labels in memory) without a token beyond loopback", "listen", cfg.Listen)
	}

	dialer, err := kafkaauth.Dialer(cfg.Kafka, opts.Getenv)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		// go_gc_heap_live_bytes: the heap live after the last GC, the honest
		// figure for memory per alert.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store, err := correlate.OpenStore(cfg.DataDir)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()
	setup, err := LoadSetup(cfg, true)
	if err != nil {
		return err
	}
	svc, err := correlate.NewService(correlate.ServiceOptions{
		Store:              store,
		WALDir:             correlate.WALDir(cfg.DataDir),
		NewEngine:          func() *correlate.Engine { return setup.NewEngine(cfg) },
		Now:                opts.Now,
		Logger:             log.With("component", "correlate"),
		Registry:           reg,
		MaxBatch:           cfg.Store.MaxBatch,
		EventRetention:     cfg.Store.EventRetention.D(),
		CheckpointInterval: cfg.Store.CheckpointInterval.D(),
	})
	if err != nil {
		return err
	}

	var sink ingest.Sink = svc
	if kc := cfg.Kafka; kc.Enabled() && kc.Publish {
		pub := ingest.NewKafkaPublisher(kc.Brokers, kc.Topics.Alerts, dialer, reg)
		defer pub.Close()
		sink = pub
	}
	ing := ingest.NewHTTP(ingest.HTTPOptions{
		Sink:           sink,
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,
		MaxEvents:      cfg.HTTP.MaxEventsPerRequest,
		ResolveTimeout: cfg.Correlation.ResolveTimeout.D(),
		Now:            opts.Now,
		Logger:         log.With("component", "ingest"),
	}, ingest.NewMetrics(reg))
	rl := newReloader(cfg, svc, setup, log.With("component", "reload"), reg)
	var pipe *logs.Pipeline
	if kc := cfg.Kafka; kc.Enabled() && kc.Topics.Logs != "" {
		if pipe, err = newLogPipeline(cfg, sink, rl, log.With("component", "logs"), reg); err != nil {
			return err
		}
	}
	ob, err := newOutbound(cfg, svc, store, opts.Getenv, log.With("component", "outbox"), reg)
	if err != nil {
		return err
	}
	defer ob.close(log)
	probs, err := newProblems(cfg, svc, store, opts.Now, log.With("component", "problems"), reg)
	if err != nil {
		return err
	}
	if probs != nil {
		defer func() {
			if err := probs.Close(); err != nil {
				log.Error("closing problems.db", "err", err)
			}
		}()
	}
	slaTracker, err := newSLATracker(cfg, svc, store, opts.Now, log.With("component", "sla"), reg)
	if err != nil {
		return err
	}
	exporter, err := newExporter(cfg, store, problemRows(probs), opts.Getenv, opts.Now, log.With("component", "clickhouse"), reg)
	if err != nil {
		return err
	}
	kpiOpts := kpiOptions(cfg)
	srv := server.New(server.Options{
		KPI: func(ctx context.Context, from, to time.Time) (any, error) {
			rep, err := kpi.ComputeJSON(store.EachIncidentJSON, from, to, opts.Now(), kpiOpts)
			if err != nil {
				return nil, err
			}
			return rep, problemCounts(probs, rep)
		},
		Problems: func() server.Problems {
			if probs == nil {
				return nil
			}
			return probs
		}(),
		Now:         opts.Now,
		JiraWebhook: ob.webhookHandler(),
		Ingest:      ing,
		Incidents:   svc,
		Reader:      store,
		CMDB:        rl,
		LogTemplates: func() server.LogTemplates {
			if pipe == nil {
				return nil
			}
			return pipe
		}(),
		Token:    string(token),
		Pprof:    cfg.HTTP.Pprof,
		Ready:    svc.Ready,
		Logger:   log.With("component", "http"),
		Registry: reg,
		Gatherer: reg,
	})

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	// The correlation service outlives the HTTP server so that in-flight
	// requests can finish; it stops only once HTTP has shut down.
	svcCtx, stopSvc := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSvc()
	svcDone := make(chan error, 1)
	go func() { svcDone <- svc.Run(svcCtx) }()

	// The outbox records tickets and failures through the service: it
	// stops before the service does.
	obCtx, stopOutbox := context.WithCancel(context.WithoutCancel(ctx))
	defer stopOutbox()
	obDone := make(chan struct{})
	go func() { defer close(obDone); ob.run(obCtx) }()
	var exportRun func(context.Context) error
	if exporter != nil {
		exportRun = exporter.Run
	}
	exportDone := runIf(obCtx, exportRun, log, "clickhouse export")
	var probRun, slaRun func(context.Context) error
	if probs != nil {
		probRun = probs.Run
	}
	if slaTracker != nil {
		slaRun = slaTracker.Run
	}
	probDone := runIf(obCtx, probRun, log, "problem tracker")
	slaDone := runIf(obCtx, slaRun, log, "sla tracker")

	// Kafka consumers are producers of work like HTTP: they stop before the
	// service does.
	kctx, stopKafka := context.WithCancel(context.WithoutCancel(ctx))
	defer stopKafka()
	kafkaDone := make(chan error, 1)
	var kafkaFailed <-chan error // nil (never ready) without Kafka
	if kc := cfg.Kafka; kc.Enabled() {
		consumer := ingest.NewKafkaConsumer(ingest.KafkaOptions{
			Dialer:          dialer,
			Brokers:         kc.Brokers,
			Group:           kc.Group,
			Topic:           kc.Topics.Alerts,
			DeadLetterTopic: kc.Topics.DeadLetter,
			MaxBatch:        kc.MaxBatch,
			BatchWait:       kc.BatchWait.D(),
			CommitInterval:  kc.CommitInterval.D(),
			Sink:            svc,
			Now:             opts.Now,
			Logger:          log.With("component", "kafka"),
			Registry:        reg,
		})
		var runs []func(context.Context) error
		if kc.Topics.Alerts != "" {
			runs = append(runs, consumer.Run)
		}
		if kc.Topics.Logs != "" {
			runs = append(runs,
				func(ctx context.Context) error { return consumer.RunLogs(ctx, kc.Topics.Logs, pipe) },
				func(ctx context.Context) error { pipe.Run(ctx, 30*time.Second); return nil })
		}
		go func() { kafkaDone <- runAll(kctx, runs) }()
		kafkaFailed = kafkaDone
	} else {
		close(kafkaDone)
	}

	// The reloader swaps CMDB and rules into the service: it stops first.
	rctx, stopReload := context.WithCancel(ctx)
	var reloads sync.WaitGroup
	reloads.Add(2)
	go func() { defer reloads.Done(); rl.Run(rctx) }()
	go func() {
		defer reloads.Done()
		for {
			select {
			case <-rctx.Done():
				return
			case <-opts.Reload:
				_ = rl.Reload(rctx, "signal") // logged
			}
		}
	}()
	defer func() { stopReload(); reloads.Wait() }()

	httpDone := make(chan error, 1)
	go func() { httpDone <- httpSrv.Serve(ln) }()
	log.Info("triage serving", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "auth", token != "")
	if opts.Listening != nil {
		opts.Listening(ln.Addr())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-httpDone:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-svcDone:
		runErr = fmt.Errorf("correlation service stopped: %w", err)
		svcDone <- err
	case err := <-kafkaFailed: // consumers only return early when the service stopped
		runErr = errors.New("kafka consumers stopped")
		if err != nil {
			runErr = fmt.Errorf("kafka consumers stopped: %w", err)
		}
		kafkaDone <- err
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	stopKafka()
	<-kafkaDone
	stopReload()
	reloads.Wait()
	stopOutbox()
	<-obDone
	<-exportDone
	<-probDone
	<-slaDone
	stopSvc()
	if err := <-svcDone; err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// newLogPipeline builds the log miner of the Kafka logs topic; its events
// go where HTTP events go, and its log rules are the rules in use.
func newLogPipeline(cfg *config.Config, sink ingest.Sink, rl *reloader, log *slog.Logger, reg prometheus.Registerer) (*logs.Pipeline, error) {
	lc := cfg.Logs
	masks := make([]logs.Mask, len(lc.Masks))
	for i, m := range lc.Masks {
		masks[i] = logs.Mask{Name: m.Name, Regex: m.Regex}
	}
	return logs.NewPipeline(logs.PipelineOptions{
		Miner:             logs.Options{MaxTemplates: lc.MaxTemplates, Masks: masks},
		Fields:            logs.Fields{Message: lc.MessageFields, Time: lc.TimeFields, Level: lc.LevelFields, Labels: lc.LabelFields},
		NewErrorTemplates: lc.NewErrorTemplates,
		Spike:             logs.SpikeOptions{Interval: lc.Spike.Interval.D(), Factor: lc.Spike.Factor, MinCount: lc.Spike.MinCount},
		EventTTL:          lc.EventTTL.D(),
		Rules:             func() *rules.Set { return rl.cur.Load().Rules },
		Sink:              sink,
		StatePath:         filepath.Join(cfg.DataDir, "log-templates.bin"),
		Logger:            log,
		Registry:          reg,
	})
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// runAll runs fs until all return; the first error cancels the others.
func runAll(ctx context.Context, fs []func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(fs))
	for _, f := range fs {
		go func() { errs <- f(ctx) }()
	}
	var first error
	for range fs {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}
