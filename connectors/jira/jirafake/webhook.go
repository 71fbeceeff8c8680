package jirafake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// WebhookDelivery is one webhook event and what became of it.
type WebhookDelivery struct {
	// Event is the webhookEvent: jira:issue_created, jira:issue_updated or comment_created.
	Event string
	// EventType is issue_event_type_name ("" for comment_created).
	EventType string
	IssueKey  string
	Body      []byte
	// Signature is the X-Hub-Signature header sent, "" without a secret.
	Signature string
	// Status is the last HTTP status received, 0 if none.
	Status   int
	Attempts int
	// Err is the last failure, "" when delivered with a 2xx.
	Err string
}

const webhookAttempts = 3

// hookQueue delivers webhooks in order from one goroutine.
type hookQueue struct {
	url, secret string
	client      *http.Client

	mu        sync.Mutex
	cond      *sync.Cond
	queue     []*WebhookDelivery
	pending   int
	closed    bool
	started   bool
	delivered []WebhookDelivery

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	seq    int
}

func newHookQueue(cfg *config) *hookQueue {
	h := &hookQueue{url: cfg.WebhookURL, secret: cfg.WebhookSecret, client: cfg.WebhookClient, done: make(chan struct{})}
	if h.client == nil {
		h.client = &http.Client{Timeout: 5 * time.Second}
	}
	h.cond = sync.NewCond(&h.mu)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

func (h *hookQueue) enqueue(d *WebhookDelivery) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if !h.started {
		h.started = true
		go h.run()
	}
	h.queue = append(h.queue, d)
	h.pending++
	h.cond.Broadcast()
}

func (h *hookQueue) run() {
	defer close(h.done)
	for {
		h.mu.Lock()
		for len(h.queue) == 0 && !h.closed {
			h.cond.Wait()
		}
		if h.closed {
			h.mu.Unlock()
			return
		}
		d := h.queue[0]
		h.queue = h.queue[1:]
		h.seq++
		seq := h.seq
		h.mu.Unlock()

		h.deliver(d, seq)

		h.mu.Lock()
		h.pending--
		h.delivered = append(h.delivered, *d)
		h.cond.Broadcast()
		h.mu.Unlock()
	}
}

func (h *hookQueue) deliver(d *WebhookDelivery, seq int) {
	for attempt := 1; attempt <= webhookAttempts; attempt++ {
		d.Attempts = attempt
		req, err := http.NewRequestWithContext(h.ctx, http.MethodPost, h.url, bytes.NewReader(d.Body))
		if err != nil {
			d.Err = err.Error()
			return
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("User-Agent", "Atlassian Webhook HTTP Client")
		req.Header.Set("X-Atlassian-Webhook-Identifier", strconv.Itoa(seq))
		if attempt > 1 {
			req.Header.Set("X-Atlassian-Webhook-Retry", strconv.Itoa(attempt-1))
		}
		if d.Signature != "" {
			req.Header.Set("X-Hub-Signature", d.Signature)
		}
		resp, err := h.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			d.Status = resp.StatusCode
			if resp.StatusCode/100 == 2 {
				d.Err = ""
				return
			}
			d.Err = "status " + resp.Status
		} else {
			d.Err = err.Error()
		}
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
}

func (h *hookQueue) close() {
	h.mu.Lock()
	h.closed = true
	started := h.started
	h.cond.Broadcast()
	h.mu.Unlock()
	h.cancel()
	if started {
		<-h.done
	}
}

// WebhookDeliveries returns the webhook events delivered or given up on, in order.
func (s *Server) WebhookDeliveries() []WebhookDelivery {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	return append([]WebhookDelivery(nil), s.hooks.delivered...)
}

// WaitWebhooks waits until every event so far has been delivered or given up on.
func (s *Server) WaitWebhooks(ctx context.Context) error {
	for {
		s.hooks.mu.Lock()
		n := s.hooks.pending
		closed := s.hooks.closed
		s.hooks.mu.Unlock()
		if n == 0 || closed {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d webhooks: %w", n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Sign returns the X-Hub-Signature value for body under secret, as Jira Cloud computes it.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// webhookIssue renders the issue part of a webhook body. The caller holds s.mu.
func (s *Server) webhookIssue(iss *issue, base string) map[string]any {
	return map[string]any{
		"id":     strconv.Itoa(iss.id),
		"self":   base + "/rest/api/2/issue/" + strconv.Itoa(iss.id),
		"key":    iss.key,
		"fields": s.renderFields(iss, fieldSel{nav: true}, base),
	}
}

func (s *Server) send(event, eventType, key string, payload map[string]any) {
	if s.cfg.WebhookURL == "" {
		return
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return
	}
	d := &WebhookDelivery{Event: event, EventType: eventType, IssueKey: key, Body: body}
	if s.cfg.WebhookSecret != "" {
		d.Signature = Sign(s.cfg.WebhookSecret, body)
	}
	s.hooks.enqueue(d)
}

// emitIssue queues jira:issue_created or jira:issue_updated. The caller holds s.mu.
func (s *Server) emitIssue(event, eventType string, actor *User, iss *issue, h *history, c *comment, now time.Time) {
	if s.cfg.WebhookURL == "" {
		return
	}
	base := s.baseLocked()
	p := map[string]any{
		"timestamp":             now.UnixMilli(),
		"webhookEvent":          event,
		"issue_event_type_name": eventType,
		"user":                  s.userJSON(actor, base, false),
		"issue":                 s.webhookIssue(iss, base),
	}
	if h != nil {
		items := []any{}
		for _, it := range h.items {
			items = append(items, s.itemJSON(it))
		}
		p["changelog"] = map[string]any{"id": strconv.Itoa(h.id), "items": items}
	}
	if c != nil {
		p["comment"] = s.commentJSON(iss, c, base)
	}
	s.send(event, eventType, iss.key, p)
}

// emitComment queues comment_created. The caller holds s.mu.
func (s *Server) emitComment(actor *User, iss *issue, c *comment, now time.Time) {
	if s.cfg.WebhookURL == "" {
		return
	}
	base := s.baseLocked()
	s.send("comment_created", "", iss.key, map[string]any{
		"timestamp":    now.UnixMilli(),
		"webhookEvent": "comment_created",
		"comment":      s.commentJSON(iss, c, base),
		"issue":        s.webhookIssue(iss, base),
	})
}
