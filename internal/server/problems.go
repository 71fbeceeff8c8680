package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/triage-dev/triage/correlate/problems"
	"github.com/triage-dev/triage/internal/httpx"
)

// Problems serves problem management; nil turns the endpoints into 404s.
type Problems interface {
	List(f problems.Filter) ([]problems.Problem, int, error)
	Get(id uint64) (*problems.Problem, error)
	Update(ctx context.Context, id uint64, p problems.Patch, actor string) (*problems.Problem, error)
}

func (s *Server) problemRoutes() {
	s.route("/api/v1/problems", true, map[string]http.HandlerFunc{"GET": s.listProblems})
	s.route("/api/v1/problems/{id}", true, map[string]http.HandlerFunc{"GET": s.getProblem, "PATCH": s.patchProblem})
}

func (s *Server) problemsOff(w http.ResponseWriter) bool {
	if s.opts.Problems == nil {
		httpx.WriteError(w, http.StatusNotFound, "problem management is off (problems.enabled: false)")
		return true
	}
	return false
}

func (s *Server) listProblems(w http.ResponseWriter, r *http.Request) {
	if s.problemsOff(w) {
		return
	}
	q := r.URL.Query()
	f := problems.Filter{Status: q.Get("status")}
	switch f.Status {
	case "", "all", problems.StatusOpen, problems.StatusKnownError, problems.StatusResolved:
	default:
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("status: %q is not open, known_error, resolved or all", f.Status))
		return
	}
	var ok bool
	if f.Limit, ok = queryInt(w, q, "limit", 100, 1, 1000); !ok {
		return
	}
	if f.Offset, ok = queryInt(w, q, "offset", 0, 0, math.MaxInt32); !ok {
		return
	}
	ps, total, err := s.opts.Problems.List(f)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"problems": ps, "total": total})
}

func (s *Server) getProblem(w http.ResponseWriter, r *http.Request) {
	if s.problemsOff(w) {
		return
	}
	id, err := problems.ParseRef(r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, err := s.opts.Problems.Get(id)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

// ProblemPatch is the body of PATCH /api/v1/problems/{id}.
type ProblemPatch struct {
	Status     *string `json:"status"`
	KnownError *bool   `json:"known_error"`
	Workaround *string `json:"workaround"`
	Actor      string  `json:"actor"`
}

func (s *Server) patchProblem(w http.ResponseWriter, r *http.Request) {
	if s.problemsOff(w) {
		return
	}
	id, err := problems.ParseRef(r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	var p ProblemPatch
	if err := decodeBody(r, &p, false, `{"status", "known_error", "workaround", "actor"}`); err != nil {
		bodyError(w, err)
		return
	}
	who, err := actor(p.Actor)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := s.opts.Problems.Update(r.Context(), id, problems.Patch{Status: p.Status, KnownError: p.KnownError, Workaround: p.Workaround}, who)
	if err != nil {
		if errors.Is(err, problems.ErrInvalid) {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
