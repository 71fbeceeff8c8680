//go:build linux

package logs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/triage-dev/triage/ingest"
)

// A failed write must fail Save and leave the previous state in place, not
// rename a truncated file over it.
func TestSaveReportsWriteErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log-templates.bin")
	p := newTestPipeline(t, &fakeSink{}, func(o *PipelineOptions) { o.StatePath = path })
	var recs []ingest.LogRecord
	for i := 0; i < 50; i++ {
		recs = append(recs, record(t0, "info", fmt.Sprintf("template number w%c%c here", 'a'+i%26, 'a'+i/26)))
	}
	if err := p.Logs(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skip(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 64, Max: old.Max}); err != nil {
		t.Skip(err)
	}
	err := p.Save() // EFBIG past 64 bytes (the Go runtime ignores SIGXFSZ)
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil {
		t.Fatal("Save returned nil after a failed write")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a state file was left after a failed save: %v", err)
	}
}
