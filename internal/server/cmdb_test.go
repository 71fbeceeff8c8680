package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/triage-dev/triage/correlate"
)

// blockingCMDB holds an import until released.
type blockingCMDB struct {
	entered, release chan struct{}
}

func (b *blockingCMDB) Topology() *correlate.Topology { return nil }

func (b *blockingCMDB) Import(_ context.Context, data []byte) (*correlate.Topology, error) {
	b.entered <- struct{}{}
	<-b.release
	return correlate.ParseTopology("body", data)
}

// A second upload while one runs is refused before its body is read.
func TestConcurrentCMDBUploadGets429(t *testing.T) {
	b := &blockingCMDB{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, options{CMDB: b})
	first := make(chan int, 1)
	go func() {
		resp, _ := e.doHeader("PUT", "/api/v1/cmdb", "cis: [{id: a}]\n", nil)
		first <- resp.StatusCode
	}()
	<-b.entered
	resp, body := e.doHeader("PUT", "/api/v1/cmdb", "cis: [{id: b}]\n", nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "another CMDB import") {
		t.Fatalf("second upload: %d %s (Retry-After %q), want 429", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	close(b.release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first upload: %d", code)
	}
}
