package server

import (
	"net/http"
	"strconv"

	"github.com/triage-dev/triage/ingest/logs"
	"github.com/triage-dev/triage/internal/httpx"
)

// LogTemplates lists mined log templates.
type LogTemplates interface {
	Templates(limit int, errorsOnly bool) []logs.TemplateStat
}

// LogTemplateList is the body of GET /api/v1/log-templates.
type LogTemplateList struct {
	Templates []logs.TemplateStat `json:"templates"`
}

func (s *Server) listLogTemplates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			httpx.WriteError(w, http.StatusBadRequest, "limit: want a number from 1 to 10000")
			return
		}
		limit = n
	}
	errorsOnly := false
	switch q.Get("error") {
	case "", "false":
	case "true":
		errorsOnly = true
	default:
		httpx.WriteError(w, http.StatusBadRequest, "error: want true or false")
		return
	}
	out := LogTemplateList{Templates: []logs.TemplateStat{}}
	if s.opts.LogTemplates != nil {
		out.Templates = s.opts.LogTemplates.Templates(limit, errorsOnly)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
