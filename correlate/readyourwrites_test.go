package correlate

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Every acknowledged submission is visible in the store after Sync, with
// many concurrent senders and readers (run with -race).
func TestReadYourWrites(t *testing.T) {
	s := newTestService(t, t.TempDir(), Options{ResolveAfter: time.Hour, ReopenWindow: time.Hour}, true)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				name := fmt.Sprintf("A%d-%d", g, i)
				if err := s.Submit(ctx, normalized(t, t0, event("alertname", name))); err != nil {
					t.Error(err)
					return
				}
				if err := s.Sync(ctx); err != nil {
					t.Error(err)
					return
				}
				open, _, err := s.store.OpenSnapshot()
				if err != nil {
					t.Error(err)
					return
				}
				found := false
				for _, inc := range open {
					if inc.Title == name {
						found = true
					}
				}
				if !found {
					t.Errorf("%s acknowledged and synced but not in the store", name)
					return
				}
			}
		}()
	}
	wg.Wait()
}
