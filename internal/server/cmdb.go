package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/httpx"
	"github.com/triage-dev/triage/internal/yamlfile"
)

// CMDB is what the API needs to read and import the topology.
type CMDB interface {
	// Topology is the topology in use, or nil.
	Topology() *correlate.Topology
	// Import validates a CMDB document (YAML or JSON), keeps it durably and
	// swaps it in. Validation problems are yamlfile.Errors.
	Import(ctx context.Context, data []byte) (*correlate.Topology, error)
}

// ErrCMDBManaged is returned by Import when the CMDB comes from a file
// named in the config: the file is the one source of truth.
var ErrCMDBManaged = errors.New("the CMDB is managed by cmdb.file in the config; edit that file (it reloads on change or SIGHUP)")

// ErrImportBusy answers an upload while another is running.
var ErrImportBusy = errors.New("another CMDB import is running; retry when it is done")

// CIList is the body of GET /api/v1/cmdb/cis.
type CIList struct {
	CIs   []triage.CI `json:"cis"`
	Total int         `json:"total"` // CIs matching the filter
	// NextOffset, when set, is the "offset" value that reads the next page.
	NextOffset int    `json:"next_offset,omitempty"`
	Hash       string `json:"hash,omitempty"`
}

// CIDetail is the body of GET /api/v1/cmdb/cis/{id}.
type CIDetail struct {
	triage.CI
	Relations []triage.Relation `json:"relations"`
}

// ImportResult is the body of a successful PUT /api/v1/cmdb.
type ImportResult struct {
	CIs       int    `json:"cis"`
	Relations int    `json:"relations"`
	Hash      string `json:"hash"`
}

func (s *Server) cmdbRoutes() {
	s.route("/api/v1/cmdb", true, map[string]http.HandlerFunc{"PUT": s.importCMDB})
	s.route("/api/v1/cmdb/cis", true, map[string]http.HandlerFunc{"GET": s.listCIs})
	s.route("/api/v1/cmdb/cis/{id}", true, map[string]http.HandlerFunc{"GET": s.getCI})
}

func (s *Server) topology() *correlate.Topology {
	if s.opts.CMDB == nil {
		return nil
	}
	return s.opts.CMDB.Topology()
}

func (s *Server) listCIs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := queryInt(w, q, "limit", 100, 1, 10000)
	if !ok {
		return
	}
	offset, ok := queryInt(w, q, "offset", 0, 0, math.MaxInt32)
	if !ok {
		return
	}
	typ, svc, text := q.Get("type"), q.Get("service"), strings.ToLower(q.Get("q"))
	out := CIList{CIs: []triage.CI{}}
	topo := s.topology()
	if topo == nil {
		httpx.WriteJSON(w, http.StatusOK, out)
		return
	}
	out.Hash = topo.Hash()
	for _, ci := range topo.CIs() {
		if typ != "" && ci.Type != typ || svc != "" && ci.Service != svc || text != "" && !ciMatches(ci, text) {
			continue
		}
		if out.Total >= offset && len(out.CIs) < limit {
			out.CIs = append(out.CIs, ci)
		}
		out.Total++
	}
	if offset+len(out.CIs) < out.Total {
		out.NextOffset = offset + len(out.CIs)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func ciMatches(ci triage.CI, text string) bool {
	if strings.Contains(strings.ToLower(ci.ID), text) || strings.Contains(strings.ToLower(ci.Name), text) {
		return true
	}
	for _, a := range ci.Aliases {
		if strings.Contains(strings.ToLower(a), text) {
			return true
		}
	}
	return false
}

func (s *Server) getCI(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	topo := s.topology()
	if topo == nil {
		httpx.WriteError(w, http.StatusNotFound, "no CMDB is loaded")
		return
	}
	ci, ok := topo.CI(id)
	if !ok {
		httpx.WriteError(w, http.StatusNotFound, fmt.Sprintf("no CI with id %q", id))
		return
	}
	rels := topo.RelationsOf(id)
	if rels == nil {
		rels = []triage.Relation{}
	}
	httpx.WriteJSON(w, http.StatusOK, CIDetail{CI: ci, Relations: rels})
}

func (s *Server) importCMDB(w http.ResponseWriter, r *http.Request) {
	if s.opts.CMDB == nil {
		httpx.WriteError(w, http.StatusServiceUnavailable, "this server cannot import a CMDB")
		return
	}
	// One upload at a time, taken before the body is read: concurrent
	// uploads must not each buffer up to MaxCMDBBytes.
	select {
	case s.importing <- struct{}{}:
		defer func() { <-s.importing }()
	default:
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, http.StatusTooManyRequests, ErrImportBusy.Error())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, correlate.MaxCMDBBytes+1))
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if len(body) > correlate.MaxCMDBBytes {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", correlate.MaxCMDBBytes))
		return
	}
	topo, err := s.opts.CMDB.Import(r.Context(), body)
	var verr yamlfile.Errors
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, ImportResult{CIs: topo.Len(), Relations: topo.Relations(), Hash: topo.Hash()})
	case errors.As(err, &verr):
		httpx.WriteError(w, http.StatusBadRequest, verr.Error())
	case errors.Is(err, ErrCMDBManaged):
		httpx.WriteError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrImportBusy):
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, http.StatusTooManyRequests, err.Error())
	default:
		s.writeErr(w, err)
	}
}
