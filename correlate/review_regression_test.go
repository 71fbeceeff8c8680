package correlate

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// A non-last segment whose preallocated tail (a truncate lost in a crash
// after a rollover) is shorter than a record header.
func TestShortZeroTailInOlderSegment(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir, 0, 200)
	appendN(t, w, 1, 6)
	w.Close()
	segs := segments(t, dir)
	if len(segs) < 2 {
		t.Fatalf("%d segments", len(segs))
	}
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 3))
	f.Close()
	if _, err := OpenWAL(dir, 0, 200, func(*Record) error { return nil }); err != nil {
		t.Fatalf("older segment ending in 3 zero bytes: %v", err)
	}
}

// The log fails during the drain at shutdown: the submitter gets an error,
// and Run should too.
func TestRunReportsWALFailureDuringShutdown(t *testing.T) {
	nilRuns := 0
	for i := 0; i < 20; i++ {
		s := newTestService(t, t.TempDir(), Options{ResolveAfter: time.Minute, ReopenWindow: time.Minute}, false)
		p := s.wal.f.Name()
		s.wal.f.Close()
		ro, err := os.Open(p) // writes fail (EBADF), Close succeeds
		if err != nil {
			t.Fatal(err)
		}
		s.wal.f = ro
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- s.Submit(context.Background(), normalized(t, t0, event("alertname", "X"))) }()
		for len(s.in) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		runErr := s.Run(ctx)
		subErr := <-errc
		if subErr == nil {
			t.Fatal("acknowledged without a log")
		}
		if runErr == nil {
			nilRuns++
		} else if !errors.Is(runErr, os.ErrClosed) {
			t.Logf("run: %v", runErr)
		}
	}
	if nilRuns > 0 {
		t.Fatalf("Run returned nil in %d of 20 shutdowns although the last log write failed", nilRuns)
	}
}
