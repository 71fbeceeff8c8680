// Package server is Triage's HTTP surface: the ingest endpoints, the
// incidents API, health, metrics and the OpenAPI document, behind optional
// bearer-token auth. Every error is a JSON body with a clear message.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/ingest"
	"github.com/triage-dev/triage/internal/httpx"
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI document served at /api/v1/openapi.yaml.
func OpenAPI() []byte { return openAPI }

// Incidents is what the API needs from the correlation service.
type Incidents interface {
	Acknowledge(ctx context.Context, id uint64, actor string) error
	Resolve(ctx context.Context, id uint64, actor, note string) error
	Comment(ctx context.Context, id uint64, actor, text string) error
	Hold(ctx context.Context, id uint64, on bool, actor, note string) error
	Feedback(ctx context.Context, id uint64, f triage.Feedback) error
	// Sync returns once the Reader shows every write acknowledged before it.
	Sync(ctx context.Context) error
}

// Reader reads committed incidents.
type Reader interface {
	Incidents(f correlate.IncidentFilter) ([]triage.Incident, error)
	Incident(id uint64) (*triage.Incident, error)
}

// Options configure the server.
type Options struct {
	Ingest    *ingest.HTTP
	Incidents Incidents
	Reader    Reader
	// CMDB serves and imports the topology; nil without one.
	CMDB CMDB
	// LogTemplates lists mined log templates; nil without log mining.
	LogTemplates LogTemplates
	// Problems serves problem management; nil when it is off.
	Problems Problems
	// KPI computes the KPIs of [from, to); nil turns /api/v1/kpi off.
	KPI func(ctx context.Context, from, to time.Time) (any, error)
	// Now is the clock for default ranges; time.Now when nil.
	Now func() time.Time
	// JiraWebhook receives Jira's webhooks (it checks its own shared
	// secret, not the bearer token); nil without the Jira connector.
	JiraWebhook http.Handler
	// Token, when not empty, is required as "Authorization: Bearer <token>"
	// on every /api/ endpoint but the OpenAPI document.
	Token string
	// Pprof serves Go's runtime profiles at /debug/pprof/, behind the token.
	Pprof    bool
	Ready    func() bool
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Gatherer prometheus.Gatherer
}

// Server routes requests.
type Server struct {
	opts         Options
	mux          *http.ServeMux
	tokenHash    [32]byte
	latency      *prometheus.HistogramVec
	authFailures prometheus.Counter
	routes       []string
	importing    chan struct{} // one CMDB upload at a time
}

// New builds the server's routes.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), importing: make(chan struct{}, 1)}
	if opts.Token != "" {
		s.tokenHash = sha256.Sum256([]byte(opts.Token))
	}
	s.latency = promauto.With(opts.Registry).NewHistogramVec(prometheus.HistogramOpts{
		Name:    "triage_http_request_duration_seconds",
		Help:    "HTTP request latency by route, method and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method", "code"})
	s.authFailures = promauto.With(opts.Registry).NewCounter(prometheus.CounterOpts{
		Name: "triage_http_auth_failures_total",
		Help: "Requests refused for a missing or wrong bearer token.",
	})

	s.route("/api/v1/alerts", true, map[string]http.HandlerFunc{"POST": opts.Ingest.Webhook()})
	s.route("/api/v2/alerts", true, map[string]http.HandlerFunc{"POST": opts.Ingest.PostableAlerts()})
	s.route("/api/v1/events", true, map[string]http.HandlerFunc{"POST": opts.Ingest.Events()})
	s.route("/api/v1/incidents", true, map[string]http.HandlerFunc{"GET": s.listIncidents})
	s.route("/api/v1/incidents/{id}", true, map[string]http.HandlerFunc{"GET": s.getIncident})
	s.route("/api/v1/incidents/{id}/acknowledge", true, map[string]http.HandlerFunc{"POST": s.acknowledge})
	s.route("/api/v1/incidents/{id}/resolve", true, map[string]http.HandlerFunc{"POST": s.resolve})
	s.route("/api/v1/incidents/{id}/comments", true, map[string]http.HandlerFunc{"POST": s.comment})
	s.route("/api/v1/incidents/{id}/hold", true, map[string]http.HandlerFunc{"POST": s.hold(true)})
	s.route("/api/v1/incidents/{id}/unhold", true, map[string]http.HandlerFunc{"POST": s.hold(false)})
	s.route("/api/v1/incidents/{id}/feedback", true, map[string]http.HandlerFunc{"POST": s.feedback})
	s.route("/api/v1/kpi", true, map[string]http.HandlerFunc{"GET": s.kpi})
	s.problemRoutes()
	s.cmdbRoutes()
	s.route("/api/v1/connectors/jira/webhook", false, map[string]http.HandlerFunc{"POST": func(w http.ResponseWriter, r *http.Request) {
		if opts.JiraWebhook == nil {
			httpx.WriteError(w, http.StatusNotFound, "the Jira connector is not configured (jira.url)")
			return
		}
		opts.JiraWebhook.ServeHTTP(w, r)
	}})
	s.route("/api/v1/log-templates", true, map[string]http.HandlerFunc{"GET": s.listLogTemplates})
	s.route("/api/v1/openapi.yaml", false, map[string]http.HandlerFunc{"GET": serveOpenAPI})
	s.route("/healthz", false, map[string]http.HandlerFunc{"GET": s.healthz})
	s.route("/readyz", false, map[string]http.HandlerFunc{"GET": s.readyz})
	if opts.Pprof {
		s.pprofRoutes()
	}
	metrics := promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})
	s.route("/metrics", false, map[string]http.HandlerFunc{"GET": metrics.ServeHTTP})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s (see /api/v1/openapi.yaml)", r.Method, r.URL.Path))
	})
	return s
}

// AuthFailures counts requests refused for a missing or wrong token.
func (s *Server) AuthFailures() prometheus.Counter { return s.authFailures }

// Routes lists the path patterns the server serves, for the OpenAPI check.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.opts.Logger.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
			httpx.WriteError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	s.mux.ServeHTTP(w, r)
}

// route registers a path with one handler per method; other methods get 405.
func (s *Server) route(pattern string, auth bool, methods map[string]http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	if get, ok := methods["GET"]; ok {
		methods["HEAD"] = get // net/http discards the body of HEAD responses
	}
	allow := make([]string, 0, len(methods))
	for m := range methods {
		allow = append(allow, m)
	}
	slices.Sort(allow)
	allowed := strings.Join(allow, ", ")
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			s.latency.WithLabelValues(pattern, methodLabel(r.Method), strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
		}()
		if auth && !s.authorized(r) {
			s.authFailures.Inc()
			s.opts.Logger.Debug("unauthorized request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			rec.Header().Set("WWW-Authenticate", `Bearer realm="triage"`)
			httpx.WriteError(rec, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h, ok := methods[r.Method]
		if !ok {
			rec.Header().Set("Allow", allowed)
			httpx.WriteError(rec, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allowed))
			return
		}
		h(rec, r)
	})
}

// methodLabel bounds the method label of metrics: a client can send any
// token as a method, and each would otherwise make a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

func (s *Server) authorized(r *http.Request) bool {
	if s.opts.Token == "" {
		return true
	}
	// The auth scheme is case-insensitive (RFC 9110 section 11.1).
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openAPI)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Ready != nil && !s.opts.Ready() {
		httpx.WriteError(w, http.StatusServiceUnavailable, "not ready")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// queryInt reads an integer query parameter in [lo, hi], def when absent;
// a bad value gets a 400 and false.
func queryInt(w http.ResponseWriter, q url.Values, name string, def, lo, hi int) (int, bool) {
	v := q.Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s: %q is not a number from %d to %d", name, v, lo, hi))
		return 0, false
	}
	return n, true
}

// IncidentList is the body of GET /api/v1/incidents.
type IncidentList struct {
	Incidents []triage.Incident `json:"incidents"`
	// NextBefore, when set, is the "before" value that reads the next page.
	NextBefore uint64 `json:"next_before,omitempty"`
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := correlate.IncidentFilter{Limit: 100}
	switch st := q.Get("status"); st {
	case "", "all":
	case "open", "acknowledged", "resolved":
		f.Status = triage.IncidentStatus(st)
	default:
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("status: %q is not open, acknowledged, resolved or all", st))
		return
	}
	var ok bool
	if f.Limit, ok = queryInt(w, q, "limit", 100, 1, 1000); !ok {
		return
	}
	if v := q.Get("before"); v != "" {
		id, err := triage.ParseIncidentRef(v)
		if err != nil {
			httpx.WriteError(w, http.StatusBadRequest, "before: "+err.Error())
			return
		}
		f.BeforeID = id
	}
	if err := s.opts.Incidents.Sync(r.Context()); err != nil {
		s.writeErr(w, err)
		return
	}
	incs, err := s.opts.Reader.Incidents(f)
	if err != nil {
		s.opts.Logger.Error("listing incidents", "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "reading incidents failed")
		return
	}
	out := IncidentList{Incidents: incs}
	if len(incs) == f.Limit {
		out.NextBefore = incs[len(incs)-1].ID
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request) {
	id, ok := incidentID(w, r)
	if ok {
		s.writeIncident(w, r, id)
	}
}

func (s *Server) writeIncident(w http.ResponseWriter, r *http.Request, id uint64) {
	if err := s.opts.Incidents.Sync(r.Context()); err != nil {
		s.writeErr(w, err)
		return
	}
	inc, err := s.opts.Reader.Incident(id)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, inc)
}

// ActionRequest is the optional body of acknowledge and resolve, and the
// body of comments (where Text is required).
type ActionRequest struct {
	Actor string `json:"actor"`
	Note  string `json:"note"`
	Text  string `json:"text"`
}

func (s *Server) acknowledge(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, false, func(ctx context.Context, id uint64, req ActionRequest) error {
		return s.opts.Incidents.Acknowledge(ctx, id, req.Actor)
	})
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, false, func(ctx context.Context, id uint64, req ActionRequest) error {
		return s.opts.Incidents.Resolve(ctx, id, req.Actor, req.Note)
	})
}

func (s *Server) comment(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, true, func(ctx context.Context, id uint64, req ActionRequest) error {
		return s.opts.Incidents.Comment(ctx, id, req.Actor, req.Text)
	})
}

func (s *Server) hold(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.action(w, r, false, func(ctx context.Context, id uint64, req ActionRequest) error {
			return s.opts.Incidents.Hold(ctx, id, on, req.Actor, req.Note)
		})
	}
}

// FeedbackRequest is the body of POST /api/v1/incidents/{id}/feedback.
type FeedbackRequest struct {
	Score   int    `json:"score"`
	Comment string `json:"comment"`
	Actor   string `json:"actor"`
}

func (s *Server) feedback(w http.ResponseWriter, r *http.Request) {
	id, ok := incidentID(w, r)
	if !ok {
		return
	}
	var req FeedbackRequest
	if err := decodeBody(r, &req, false, `{"score": 1-5, "comment": ..., "actor": ...}`); err != nil {
		bodyError(w, err)
		return
	}
	if req.Score < 1 || req.Score > 5 {
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("score: %d is not between 1 and 5", req.Score))
		return
	}
	if len(req.Comment) > 4096 {
		httpx.WriteError(w, http.StatusBadRequest, "comment: longer than 4096 bytes")
		return
	}
	var err error
	if req.Actor, err = actor(req.Actor); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.opts.Incidents.Feedback(r.Context(), id, triage.Feedback{Score: req.Score, Comment: req.Comment, Actor: req.Actor}); err != nil {
		s.writeErr(w, err)
		return
	}
	s.writeIncident(w, r, id)
}

// kpi serves GET /api/v1/kpi?from=&to= (RFC 3339 times or Unix seconds;
// the last 7 days by default).
func (s *Server) kpi(w http.ResponseWriter, r *http.Request) {
	if s.opts.KPI == nil {
		httpx.WriteError(w, http.StatusNotFound, "KPIs are not available")
		return
	}
	now := time.Now
	if s.opts.Now != nil {
		now = s.opts.Now
	}
	to, err := timeParam(r, "to", now())
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	from, err := timeParam(r, "from", to.Add(-7*24*time.Hour))
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !from.Before(to) {
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339)))
		return
	}
	if err := s.opts.Incidents.Sync(r.Context()); err != nil {
		s.writeErr(w, err)
		return
	}
	rep, err := s.opts.KPI(r.Context(), from, to)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, rep)
}

func timeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n < 1<<40 {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 time (2026-11-25T09:00:00Z) or Unix seconds", name, v)
}

func (s *Server) action(w http.ResponseWriter, r *http.Request, needText bool,
	do func(context.Context, uint64, ActionRequest) error) {
	id, ok := incidentID(w, r)
	if !ok {
		return
	}
	req, err := decodeAction(r, needText)
	if err != nil {
		bodyError(w, err)
		return
	}
	if err := do(r.Context(), id, req); err != nil {
		s.writeErr(w, err)
		return
	}
	s.writeIncident(w, r, id)
}

const maxActionBody = 64 << 10

var errTooLarge = errors.New("larger than the limit")

// decodeBody reads a JSON object of at most maxActionBody bytes into v,
// strictly (unknown fields, trailing data and invalid UTF-8 refused); an
// empty body leaves v as it is when optional. want shows the expected
// shape in messages. The error says what is wrong; errTooLarge is 413.
func decodeBody(r *http.Request, v any, optional bool, want string) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxActionBody+1))
	if err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if len(body) > maxActionBody {
		return fmt.Errorf("body: %w of %d bytes", errTooLarge, maxActionBody)
	}
	if !utf8.Valid(body) {
		return errors.New("body: not valid UTF-8")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if optional {
			return nil
		}
		return fmt.Errorf("body: want %s", want)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: want %s: %w", want, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("body: want %s: unexpected data after the JSON object", want)
	}
	return nil
}

// bodyError answers a decodeBody error: 413 when too large, else 400.
func bodyError(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	if errors.Is(err, errTooLarge) {
		code = http.StatusRequestEntityTooLarge
	}
	httpx.WriteError(w, code, err.Error())
}

// actor trims an actor name, "api" when empty.
func actor(a string) (string, error) {
	a = strings.TrimSpace(a)
	if a == "" {
		a = "api"
	}
	if len(a) > 200 {
		return "", errors.New("actor: longer than 200 bytes")
	}
	return a, nil
}

func decodeAction(r *http.Request, needText bool) (ActionRequest, error) {
	var req ActionRequest
	if err := decodeBody(r, &req, true, `{"actor": ..., "note": ..., "text": ...}`); err != nil {
		return req, err
	}
	var err error
	if req.Actor, err = actor(req.Actor); err != nil {
		return req, err
	}
	if needText && strings.TrimSpace(req.Text) == "" {
		return req, errors.New("text: required")
	}
	return req, nil
}

func incidentID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := triage.ParseIncidentRef(r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return 0, false
	}
	return id, true
}

func (s *Server) writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, correlate.ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, correlate.ErrConflict):
		httpx.WriteError(w, http.StatusConflict, err.Error())
	case errors.Is(err, correlate.ErrInvalid):
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, correlate.ErrStopped), errors.Is(err, context.Canceled):
		httpx.WriteError(w, http.StatusServiceUnavailable, err.Error())
	default:
		s.opts.Logger.Error("request failed", "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "internal error (logged)")
	}
}
