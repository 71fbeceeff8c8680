package app

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triage-dev/triage/connectors"
	"github.com/triage-dev/triage/connectors/jira"
	"github.com/triage-dev/triage/connectors/webhook"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/config"
)

// outbound is the outbox with its connectors; nil fields when none is
// configured.
type outbound struct {
	box     *connectors.Outbox
	inbound *jira.Inbound // nil without Jira
}

// newOutbound builds the configured connectors and opens the outbox in
// data_dir/outbox.db. It returns a zero outbound when none is configured.
func newOutbound(cfg *config.Config, svc *correlate.Service, store *correlate.Store, getenv func(string) string,
	log *slog.Logger, reg prometheus.Registerer) (*outbound, error) {
	var cs []connectors.Connector
	var jc *jira.Connector
	if cfg.Jira.Enabled() {
		o, err := cfg.JiraOptions(getenv)
		if err != nil {
			return nil, err
		}
		o.HTTPClient = &http.Client{Timeout: cfg.JiraTimeout()}
		if jc, err = jira.New(o, log.With("connector", jira.Name)); err != nil {
			return nil, err
		}
		cs = append(cs, jc)
	}
	for _, w := range cfg.Webhooks {
		o, err := w.WebhookOptions(getenv)
		if err != nil {
			return nil, err
		}
		o.HTTPClient = &http.Client{Timeout: w.WebhookTimeout()}
		c, err := webhook.New(o)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		return &outbound{}, nil
	}
	box, err := connectors.Open(connectors.Options{
		Path:       filepath.Join(cfg.DataDir, "outbox.db"),
		Source:     store,
		Recorder:   svc,
		Connectors: cs,
		Workers:    cfg.Outbox.Workers,
		MinBackoff: cfg.Outbox.MinBackoff.D(),
		MaxBackoff: cfg.Outbox.MaxBackoff.D(),
		Logger:     log,
		Registry:   reg,
	})
	if err != nil {
		return nil, err
	}
	ob := &outbound{box: box}
	if jc != nil {
		jc.Bind(box)
		ob.inbound = jc.Inbound(svc, store)
	}
	return ob, nil
}

// run delivers and polls until ctx is cancelled.
func (ob *outbound) run(ctx context.Context) {
	if ob.box == nil {
		return
	}
	done := make(chan struct{})
	if ob.inbound != nil {
		go func() { defer close(done); _ = ob.inbound.Run(ctx) }()
	} else {
		close(done)
	}
	_ = ob.box.Run(ctx)
	<-done
}

func (ob *outbound) close(log *slog.Logger) {
	if ob.box == nil {
		return
	}
	if err := ob.box.Close(); err != nil {
		log.Error("closing the outbox", "err", err)
	}
}

// webhookHandler is the Jira webhook endpoint, nil without Jira.
func (ob *outbound) webhookHandler() http.Handler {
	if ob.inbound == nil {
		return nil
	}
	return ob.inbound
}
