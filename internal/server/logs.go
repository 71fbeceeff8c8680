package server

import (
	"net/http"

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
	limit, ok := queryInt(w, q, "limit", 100, 1, 10000)
	if !ok {
		return
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
