// Command triage is the Triage daemon and its tools. See `triage help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/triage-dev/triage/internal/app"
	"github.com/triage-dev/triage/internal/config"
)

const usage = `Triage turns monitoring alerts into deduplicated, correlated incidents.

Usage:
  triage serve [--config FILE] [--listen ADDR] [--data-dir DIR]   run the daemon
  triage check FILE                                               validate a config with its CMDB and rules
  triage rules test FILE...                                       run rule unit tests
  triage replay [--config FILE] [--output json|table] EVENTS.jsonl...
                                                                  back-test: the incidents recorded events make
  triage logs mine [--output templates|lines] [--mask NAME=REGEX]... [--max-templates N] FILE
                                                                  mine log templates, one message per line (- for stdin)
  triage migrate [--config FILE] [--addr HOST:PORT] [--database NAME]
                                                                  apply the ClickHouse schema migrations (serve does at start)
  triage help                                                     this text

With no config, serve runs on embedded defaults: HTTP on 127.0.0.1:9400,
state in ./triage-data. See the README for the configuration reference.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "replay":
		return replayCmd(args[1:], stdout, stderr)
	case "rules":
		return rulesCmd(args[1:], stdout, stderr)
	case "logs":
		return logsCmd(args[1:], stdout, stderr)
	case "migrate":
		return migrate(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "triage: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", "", "config file (YAML); embedded defaults when empty")
	listen := fs.String("listen", "", "HTTP listen address, overrides the config's listen")
	dataDir := fs.String("data-dir", "", "state directory, overrides the config's data_dir")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, ok := loadConfig(*cfgFile, stderr)
	if !ok {
		return 1
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	log := newLogger(cfg.Log, stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the CMDB and rule files (the rest of the config needs a restart).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default: // one is pending already
			}
		}
	}()

	if err := app.Run(ctx, app.Options{Config: cfg, Logger: log, Reload: reload}); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("triage stopped", "err", err)
		return 1
	}
	return 0
}

func check(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: triage check FILE")
		return 2
	}
	cfg, err := config.Load(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	setup, err := app.LoadSetup(cfg, false)
	if err == nil {
		err = setup.CheckReferences()
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var parts []string
	if t := setup.Topology; t != nil {
		parts = append(parts, fmt.Sprintf("cmdb %s: %d CIs, %d relations", setup.TopologySource, t.Len(), t.Relations()))
	}
	if setup.Rules != nil {
		parts = append(parts, fmt.Sprintf("%d rules", setup.Rules.Len()))
	}
	if len(parts) > 0 {
		fmt.Fprintf(stdout, "%s: ok (%s)\n", args[0], strings.Join(parts, "; "))
		return 0
	}
	fmt.Fprintf(stdout, "%s: ok\n", args[0])
	return 0
}

// loadConfig reads a config file, or gives the embedded defaults for "";
// problems go to stderr as file:line lines.
func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	if path == "" {
		return config.Default(), true
	}
	c, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, false
	}
	return c, true
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level))) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
