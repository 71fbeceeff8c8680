package server

import (
	"net/http"
	"net/http/pprof"
)

// pprofRoutes serves Go's runtime profiles (CPU, heap, goroutines, mutex
// and block contention, execution traces) at /debug/pprof/, behind the
// bearer token like the API: a profile shows alert labels in memory.
func (s *Server) pprofRoutes() {
	s.route("/debug/pprof/", true, map[string]http.HandlerFunc{"GET": pprof.Index})
	s.route("/debug/pprof/cmdline", true, map[string]http.HandlerFunc{"GET": pprof.Cmdline})
	s.route("/debug/pprof/profile", true, map[string]http.HandlerFunc{"GET": pprof.Profile})
	s.route("/debug/pprof/symbol", true, map[string]http.HandlerFunc{"GET": pprof.Symbol, "POST": pprof.Symbol})
	s.route("/debug/pprof/trace", true, map[string]http.HandlerFunc{"GET": pprof.Trace})
}
