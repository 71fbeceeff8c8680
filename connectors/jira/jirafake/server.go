package jirafake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Server is a fake Jira site. It is an http.Handler and safe for concurrent use.
type Server struct {
	cfg *config

	mu        sync.Mutex // guards everything below and the issues' contents
	issues    []*issue   // in creation order
	byKey     map[string]*issue
	byID      map[int]*issue
	index     map[int][]version // per issue id, oldest first
	nextIssue int
	nextCmt   int
	nextHist  int
	projNext  map[string]int
	lastBase  string

	reqMu    sync.Mutex
	requests []RequestRecord

	faults  faultList
	limiter *limiter
	hooks   *hookQueue
}

// RequestRecord is one request the server received, for assertions.
type RequestRecord struct {
	Time     time.Time
	Method   string
	Path     string // URL path, e.g. /rest/api/2/issue/OPS-1
	RawQuery string
	// User is the authenticated user's id (accountId on Cloud, name on Data Center), "" if none.
	User string
	// Status is the status code sent; 0 if the connection was dropped or the client went away.
	Status int
	// Fault is true when an injected fault decided the response.
	Fault bool
	// Dropped is true when the connection was closed without a response.
	Dropped bool
}

// New returns a fake Jira configured by o. Call Close when done to stop webhook delivery.
func New(o Options) *Server {
	cfg := newConfig(o)
	s := &Server{
		cfg:       cfg,
		byKey:     map[string]*issue{},
		byID:      map[int]*issue{},
		index:     map[int][]version{},
		nextIssue: 10000,
		nextCmt:   10000,
		nextHist:  10000,
		projNext:  map[string]int{},
		limiter:   newLimiter(cfg.RateLimit),
	}
	s.hooks = newHookQueue(cfg)
	return s
}

// Close stops webhook delivery. Events not yet delivered are dropped.
func (s *Server) Close() {
	s.hooks.close()
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// bufferWriter holds a response that is never sent (AfterCommit faults).
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.header }
func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// ServeHTTP serves Jira's REST API v2.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := RequestRecord{Time: s.cfg.Now(), Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		v := recover()
		if v == http.ErrAbortHandler {
			rec.Dropped = true
		} else if v != nil && sw.status == 0 {
			// Never let bad input take the test process down; report it like Jira's 500.
			writeError(sw, http.StatusInternalServerError, []string{fmt.Sprintf("Internal server error: %v", v)}, nil)
		}
		if !rec.Dropped {
			rec.Status = sw.status
		}
		s.reqMu.Lock()
		s.requests = append(s.requests, rec)
		s.reqMu.Unlock()
		if v == http.ErrAbortHandler {
			panic(v)
		}
	}()
	base := s.cfg.BaseURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
		s.mu.Lock()
		s.lastBase = base
		s.mu.Unlock()
	}
	base = strings.TrimRight(base, "/")

	// Read the body first: it lets net/http notice a client that goes away during a delay.
	body, bodyErr := s.readBody(r)
	serve := func(w http.ResponseWriter) {
		if bodyErr != nil {
			q := &request{w: w}
			q.fail(bodyErr)
			return
		}
		s.serve(w, r, body, base, &rec)
	}

	f, ok := s.faults.match(r.Method, r.URL.Path)
	if !ok {
		serve(sw)
		return
	}
	rec.Fault = true
	if !f.AfterCommit {
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				rec.Dropped = true // the client gave up before the request reached Jira
				return
			}
		}
		switch {
		case f.DropConnection:
			rec.Dropped = true
			dropConnection(w)
		case f.Status != 0:
			writeFault(sw, f)
		default:
			rec.Fault = false // a pure delay: Jira then answers normally
			serve(sw)
		}
		return
	}
	buf := &bufferWriter{header: http.Header{}}
	serve(buf)
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	if f.Status != 0 && !f.DropConnection {
		writeFault(sw, f)
		return
	}
	rec.Dropped = true
	dropConnection(w)
}

func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2 or a recorder: the closest we can do is abort the handler.
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	_ = conn.Close()
}

// readBody reads the request body up to the size limit.
func (s *Server) readBody(r *http.Request) ([]byte, *apiError) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, badRequest("Could not read the request body.")
	}
	if int64(len(b)) > s.cfg.MaxBodyBytes {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, messages: []string{"Request entity too large."}}
	}
	return b, nil
}

// serve handles one request after faults: authentication, rate limit, routing.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, body []byte, base string, rec *RequestRecord) {
	user, failed := s.authenticate(r)
	if user == nil {
		if failed && !s.cfg.cloud {
			w.Header().Set("X-Seraph-LoginReason", "AUTHENTICATED_FAILED")
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="protected-area"`)
		writeError(w, http.StatusUnauthorized, []string{"You are not authenticated. Authentication required to perform this operation."}, nil)
		return
	}
	rec.User = s.cfg.userID(user)
	if !s.limiter.allow(w, user.AccountID, s.cfg.Now(), s.cfg.cloud) {
		return
	}
	if s.cfg.cloud {
		w.Header().Set("X-AACCOUNTID", user.AccountID)
	} else {
		w.Header().Set("X-AUSERNAME", user.Name)
	}
	req := &request{w: w, r: r, s: s, user: user, body: body, base: base, query: r.URL.Query()}
	s.route(req)
}

// authenticate returns the user, or nil and whether credentials were given but wrong.
func (s *Server) authenticate(r *http.Request) (*User, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, false
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return nil, true
		}
		name, secret, ok := strings.Cut(string(raw), ":")
		if !ok || secret == "" {
			return nil, true
		}
		for i := range s.cfg.Users {
			u := &s.cfg.Users[i]
			if u.APIToken == "" || u.APIToken != secret {
				continue
			}
			if s.cfg.cloud && u.Email != "" && strings.EqualFold(u.Email, name) {
				return u, false
			}
			if !s.cfg.cloud && (u.Name == name || (u.Email != "" && strings.EqualFold(u.Email, name))) {
				return u, false
			}
		}
	case "bearer":
		if s.cfg.cloud || cred == "" {
			return nil, true // Cloud bearer tokens are OAuth 2.0, not modelled
		}
		for i := range s.cfg.Users {
			if u := &s.cfg.Users[i]; u.PAT != "" && u.PAT == cred {
				return u, false
			}
		}
	}
	return nil, true
}

// request is one authenticated API call.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	s     *Server
	user  *User
	body  []byte
	base  string
	query url.Values
}

// route dispatches /rest/api/2/... and /rest/api/latest/...
func (s *Server) route(q *request) {
	p := q.r.URL.EscapedPath()
	var rest string
	for _, prefix := range []string{"/rest/api/2/", "/rest/api/latest/"} {
		if strings.HasPrefix(p, prefix) {
			rest = strings.TrimSuffix(p[len(prefix):], "/")
			break
		}
	}
	var parts []string
	if rest != "" {
		for _, seg := range strings.Split(rest, "/") {
			v, err := url.PathUnescape(seg)
			if err != nil {
				v = seg
			}
			parts = append(parts, v)
		}
	}
	m := q.r.Method
	notFound := func() {
		writeJSON(q.w, http.StatusNotFound, map[string]any{"message": "null for uri: " + q.base + q.r.URL.RequestURI(), "status-code": http.StatusNotFound})
	}
	notAllowed := func() { q.w.WriteHeader(http.StatusMethodNotAllowed) }
	// method maps a method to a handler; it answers 405 for other methods.
	method := func(handlers map[string]func()) {
		if h, ok := handlers[m]; ok {
			h()
			return
		}
		notAllowed()
	}
	switch {
	case len(parts) == 1 && parts[0] == "myself":
		method(map[string]func(){"GET": func() { writeJSON(q.w, 200, q.s.userJSON(q.user, q.base, true)) }})
	case len(parts) == 1 && parts[0] == "serverInfo":
		method(map[string]func(){"GET": q.serverInfo})
	case len(parts) == 1 && parts[0] == "priority":
		method(map[string]func(){"GET": q.priorities})
	case len(parts) == 1 && parts[0] == "resolution":
		method(map[string]func(){"GET": q.resolutions})
	case len(parts) == 1 && parts[0] == "field":
		method(map[string]func(){"GET": q.fields})
	case len(parts) == 1 && parts[0] == "project":
		method(map[string]func(){"GET": q.projects})
	case len(parts) == 2 && parts[0] == "project":
		method(map[string]func(){"GET": func() { q.project(parts[1]) }})
	case len(parts) == 1 && parts[0] == "issue":
		method(map[string]func(){"POST": q.createIssue})
	case len(parts) == 2 && parts[0] == "issue":
		method(map[string]func(){"GET": func() { q.getIssue(parts[1]) }, "PUT": func() { q.editIssue(parts[1]) }})
	case len(parts) == 3 && parts[0] == "issue" && parts[2] == "comment":
		method(map[string]func(){"GET": func() { q.listComments(parts[1]) }, "POST": func() { q.addComment(parts[1]) }})
	case len(parts) == 4 && parts[0] == "issue" && parts[2] == "comment":
		method(map[string]func(){"GET": func() { q.getComment(parts[1], parts[3]) }})
	case len(parts) == 3 && parts[0] == "issue" && parts[2] == "transitions":
		method(map[string]func(){"GET": func() { q.getTransitions(parts[1]) }, "POST": func() { q.doTransition(parts[1]) }})
	case len(parts) == 3 && parts[0] == "issue" && parts[2] == "assignee":
		method(map[string]func(){"PUT": func() { q.assign(parts[1]) }})
	case len(parts) == 3 && parts[0] == "issue" && parts[2] == "properties":
		method(map[string]func(){"GET": func() { q.listProperties(parts[1]) }})
	case len(parts) == 4 && parts[0] == "issue" && parts[2] == "properties":
		method(map[string]func(){
			"GET":    func() { q.getProperty(parts[1], parts[3]) },
			"PUT":    func() { q.setProperty(parts[1], parts[3]) },
			"DELETE": func() { q.deleteProperty(parts[1], parts[3]) },
		})
	case len(parts) == 1 && parts[0] == "search":
		if s.cfg.cloud {
			writeError(q.w, http.StatusGone, []string{"The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"}, nil)
			return
		}
		method(map[string]func(){"GET": q.searchGet, "POST": q.searchPost})
	case len(parts) == 2 && parts[0] == "search" && parts[1] == "jql":
		if !s.cfg.cloud {
			notFound()
			return
		}
		method(map[string]func(){"GET": q.searchJQLGet, "POST": q.searchJQLPost})
	default:
		notFound()
	}
}

// writeJSON writes v with Jira's content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errorMessages":["Internal server error"],"errors":{}}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes Jira's error collection.
func writeError(w http.ResponseWriter, status int, messages []string, fieldErrors map[string]string) {
	if messages == nil {
		messages = []string{}
	}
	if fieldErrors == nil {
		fieldErrors = map[string]string{}
	}
	writeJSON(w, status, map[string]any{"errorMessages": messages, "errors": fieldErrors})
}

// apiError is a failure to answer with Jira's error collection.
type apiError struct {
	status   int
	messages []string
	fields   map[string]string
}

func (e *apiError) Error() string {
	parts := append([]string(nil), e.messages...)
	for k, v := range e.fields {
		parts = append(parts, k+": "+v)
	}
	return fmt.Sprintf("jira %d: %s", e.status, strings.Join(parts, "; "))
}

func badRequest(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, messages: []string{msg}}
}

func fieldError(field, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, fields: map[string]string{field: msg}}
}

var errIssueNotFound = &apiError{status: http.StatusNotFound, messages: []string{"Issue does not exist or you do not have permission to see it."}}

func (q *request) fail(err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeError(q.w, ae.status, ae.messages, ae.fields)
		return
	}
	writeError(q.w, http.StatusInternalServerError, []string{err.Error()}, nil)
}

// checkJSONBody enforces Jira's content negotiation for requests with a body: JSON is required,
// form encodings fail the XSRF check.
func (q *request) checkJSONBody() bool {
	ct := strings.ToLower(q.r.Header.Get("Content-Type"))
	if strings.HasPrefix(ct, "application/json") {
		return true
	}
	if strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data") || strings.HasPrefix(ct, "text/plain") {
		q.w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
		q.w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(q.w, "XSRF check failed")
		return false
	}
	q.w.WriteHeader(http.StatusUnsupportedMediaType)
	return false
}

// decodeObject parses a JSON object body, refusing properties outside allowed as Jira's Jackson
// beans do. bean names the Java class for the message.
func decodeObject(body []byte, bean string, allowed ...string) (map[string]json.RawMessage, *apiError) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("No content to map to Object due to end of input")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, badRequest(jsonSyntaxMessage(body, err))
	}
	if dec.More() {
		return nil, badRequest("Unexpected content after the end of the JSON value")
	}
	if _, ok := raw.(map[string]any); !ok {
		return nil, badRequest(fmt.Sprintf("Can not deserialize instance of %s out of %s token", bean, jsonTokenName(raw)))
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, badRequest(jsonSyntaxMessage(body, err))
	}
	for k := range obj {
		if allowed != nil && !containsExact(allowed, k) {
			return nil, badRequest(fmt.Sprintf("Unrecognized field %q (Class %s), not marked as ignorable", k, bean))
		}
	}
	return obj, nil
}

func containsExact(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func jsonTokenName(v any) string {
	switch v.(type) {
	case []any:
		return "START_ARRAY"
	case string:
		return "VALUE_STRING"
	case json.Number:
		return "VALUE_NUMBER_INT"
	case bool:
		return "VALUE_TRUE"
	default:
		return "VALUE_NULL"
	}
}

// jsonSyntaxMessage words a JSON syntax error like Jackson, with line and column.
func jsonSyntaxMessage(body []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := int(se.Offset)
		if off > len(body) {
			off = len(body)
		}
		line, col := 1, 1
		for _, c := range body[:max(off-1, 0)] {
			if c == '\n' {
				line++
				col = 1
			} else {
				col++
			}
		}
		return fmt.Sprintf("Unexpected character: %s\n at [Source: org.apache.catalina.connector.CoyoteInputStream; line: %d, column: %d]", se.Error(), line, col)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "Unexpected end-of-input: expected close marker for OBJECT"
	}
	return "Can not parse the request body: " + err.Error()
}

func (q *request) serverInfo() {
	now := q.s.cfg.Now()
	info := map[string]any{
		"baseUrl":        q.base,
		"serverTime":     jiraTime(now),
		"scmInfo":        "fake",
		"serverTitle":    "Jira",
		"buildDate":      "2024-01-01T00:00:00.000+0000",
		"buildNumber":    100250,
		"deploymentType": "Cloud",
		"version":        "1001.0.0-SNAPSHOT",
		"versionNumbers": []int{1001, 0, 0},
	}
	if !q.s.cfg.cloud {
		info["deploymentType"] = "Server"
		info["version"] = "9.12.2"
		info["versionNumbers"] = []int{9, 12, 2}
		info["buildNumber"] = 9120002
	}
	writeJSON(q.w, 200, info)
}

func (q *request) priorities() {
	out := []any{}
	for _, p := range q.s.cfg.Priorities {
		out = append(out, priorityJSON(p, q.base))
	}
	writeJSON(q.w, 200, out)
}

func (q *request) resolutions() {
	out := []any{}
	for _, r := range q.s.cfg.Resolutions {
		out = append(out, resolutionJSON(r, q.base))
	}
	writeJSON(q.w, 200, out)
}

func (q *request) projects() {
	out := []any{}
	for _, p := range q.s.cfg.projects {
		out = append(out, q.s.projectJSON(p, q.base))
	}
	writeJSON(q.w, 200, out)
}

func (q *request) project(keyOrID string) {
	p := q.s.cfg.projectByKeyOrID(keyOrID)
	if p == nil {
		writeError(q.w, http.StatusNotFound, []string{fmt.Sprintf("No project could be found with key '%s'.", keyOrID)}, nil)
		return
	}
	out := q.s.projectJSON(p, q.base)
	var types []any
	for _, t := range p.IssueTypes {
		if it, ok := q.s.cfg.issueType(t); ok {
			types = append(types, issueTypeJSON(it, q.base))
		}
	}
	out["issueTypes"] = types
	var comps []any
	for i, c := range p.Components {
		comps = append(comps, componentJSON(p, i, c, q.base))
	}
	out["components"] = comps
	writeJSON(q.w, 200, out)
}

func (q *request) fields() {
	out := []any{}
	for _, f := range systemFields {
		out = append(out, map[string]any{
			"id": f.id, "key": f.id, "name": f.name, "custom": false, "orderable": f.orderable,
			"navigable": f.navigable, "searchable": f.searchable, "clauseNames": f.clauses,
			"schema": map[string]any{"type": f.schema, "system": f.id},
		})
	}
	for _, f := range q.s.cfg.CustomFields {
		num := strings.TrimPrefix(f.ID, "customfield_")
		out = append(out, map[string]any{
			"id": f.ID, "key": f.ID, "name": f.Name, "custom": true, "orderable": true, "navigable": true,
			"searchable": true, "clauseNames": []string{"cf[" + num + "]", f.Name},
			"schema": customSchema(&f),
		})
	}
	writeJSON(q.w, 200, out)
}
