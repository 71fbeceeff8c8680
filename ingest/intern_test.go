package ingest_test

import (
	"fmt"
	"sync"
	"testing"
	"unsafe"

	"github.com/triage-dev/triage/ingest"
)

// TestInternerBound: however many strings come, the interner holds at most
// its capacity.
func TestInternerBound(t *testing.T) {
	const capacity = 100
	in := ingest.NewInterner(capacity)
	for i := range 10 * capacity {
		in.Intern(fmt.Appendf(nil, "value-%d", i))
		if n := in.Len(); n > capacity {
			t.Fatalf("after %d strings the interner holds %d, more than its capacity %d", i+1, n, capacity)
		}
	}
	if n := in.Len(); n == 0 {
		t.Fatal("the interner holds nothing")
	}
	if n := ingest.NewInterner(0).Len(); n != 0 {
		t.Fatalf("a new interner holds %d strings", n)
	}
}

// TestInternerShares: the same bytes give the same string, a copy of them.
func TestInternerShares(t *testing.T) {
	in := ingest.NewInterner(10)
	a := in.Intern([]byte("kube-state-metrics"))
	b := in.Intern([]byte("kube-state-metrics"))
	if a != "kube-state-metrics" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatalf("interning the same bytes twice gave two strings")
	}
	buf := []byte("pod-1")
	s := in.Intern(buf)
	buf[0] = 'X'
	if s != "pod-1" {
		t.Fatalf("an interned string changed with the bytes it came from: %q", s)
	}
}

// TestInternerConcurrent is for the race detector.
func TestInternerConcurrent(t *testing.T) {
	in := ingest.NewInterner(50)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				v := fmt.Appendf(nil, "v%d", (i*7+g)%120)
				if s := in.Intern(v); s != string(v) {
					t.Errorf("Intern(%q) = %q", v, s)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := in.Len(); n > 50 {
		t.Fatalf("the interner holds %d strings, more than its capacity 50", n)
	}
}
