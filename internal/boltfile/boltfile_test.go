package boltfile

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.db") // the directory is created
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "another triage process holds it") {
		t.Fatalf("second open: %v", err)
	}
}
