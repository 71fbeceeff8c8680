package jirafake

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is an injected failure. Faults are tried in the order injected; the first that matches a
// request applies to it and counts down.
type Fault struct {
	// Method matches the request method; "" matches any.
	Method string
	// PathPrefix matches the start of the URL path (e.g. "/rest/api/2/issue"); "" matches any.
	PathPrefix string
	// PathRegexp, when set, must also match the URL path.
	PathRegexp *regexp.Regexp
	// Times is how many matching requests the fault applies to: 0 means once, negative means
	// every one until ClearFaults.
	Times int
	// Status is the status code answered. With AfterCommit and no Status the connection is
	// dropped.
	Status int
	// RetryAfter, in seconds, sets the Retry-After header when positive.
	RetryAfter int
	// Body replaces the default Jira error body ({"errorMessages":[<status text>],"errors":{}}).
	Body string
	// Delay holds the response back. Without AfterCommit the request is processed after the
	// delay, and not at all if the client gave up meanwhile; with AfterCommit the change is
	// applied first and the delay comes before the failure.
	Delay time.Duration
	// AfterCommit applies the request (the issue is created, the comment added...) and then
	// answers Status or drops the connection: "done in Jira but the client never learnt it".
	AfterCommit bool
	// DropConnection closes the connection without an answer (via http.Hijacker).
	DropConnection bool
}

type faultEntry struct {
	Fault
	left int // negative: unlimited
}

type faultList struct {
	mu   sync.Mutex
	list []*faultEntry
}

// Inject adds a fault after those already injected.
func (s *Server) Inject(f Fault) {
	left := f.Times
	if left == 0 {
		left = 1
	}
	s.faults.mu.Lock()
	s.faults.list = append(s.faults.list, &faultEntry{Fault: f, left: left})
	s.faults.mu.Unlock()
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	s.faults.list = nil
	s.faults.mu.Unlock()
}

// match finds the first live fault for the request and counts it down.
func (l *faultList) match(method, path string) (Fault, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, f := range l.list {
		if f.Method != "" && !strings.EqualFold(f.Method, method) {
			continue
		}
		if f.PathPrefix != "" && !strings.HasPrefix(path, f.PathPrefix) {
			continue
		}
		if f.PathRegexp != nil && !f.PathRegexp.MatchString(path) {
			continue
		}
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				l.list = append(l.list[:i:i], l.list[i+1:]...)
			}
		}
		return f.Fault, true
	}
	return Fault{}, false
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.Body))
		return
	}
	msg := http.StatusText(f.Status)
	if f.Status == http.StatusTooManyRequests {
		msg = "Rate limit exceeded."
	}
	writeError(w, f.Status, []string{msg}, nil)
}
