package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("correlation:\n  window: 5m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("correlation:\n  window: soon\n  group_by: []\nkafkaa: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err []string
	}{
		{"valid", []string{"check", good}, 0, []string{good + ": ok"}, nil},
		{"invalid", []string{"check", bad}, 1, nil, []string{bad + ":2: correlation.window:", bad + ":4: unknown key kafkaa"}},
		{"missing file", []string{"check", filepath.Join(dir, "nope.yaml")}, 1, nil, []string{"nope.yaml", "no such file"}},
		{"no file", []string{"check"}, 2, nil, []string{"usage: triage check FILE"}},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`, "Usage:"}},
		{"help", []string{"help"}, 0, []string{"triage serve"}, nil},
		{"bad serve flag", []string{"serve", "--nope"}, 2, nil, []string{"flag provided but not defined"}},
		{"serve with bad config", []string{"serve", "--config", bad}, 1, nil, []string{"unknown key kafkaa"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			for _, w := range tc.out {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout %q lacks %q", stdout.String(), w)
				}
			}
			for _, w := range tc.err {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
		})
	}
}
