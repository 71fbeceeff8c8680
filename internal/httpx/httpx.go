// Package httpx holds the small HTTP helpers every handler shares: JSON
// responses and the JSON error shape.
package httpx

import (
	"encoding/json"
	"net/http"
)

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
	// Status repeats the HTTP status code for clients that log bodies only.
	Status int `json:"status"`
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing useful to do
}

// WriteError writes an Error body.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, Error{Error: msg, Status: status})
}
