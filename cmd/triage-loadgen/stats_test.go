package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsTileTheRange(t *testing.T) {
	for b := 0; b < histBuckets-1; b++ {
		_, hi := bucketRange(b)
		lo, _ := bucketRange(b + 1)
		if hi+1 != lo {
			t.Fatalf("bucket %d ends at %d, bucket %d starts at %d", b, hi, b+1, lo)
		}
	}
	if _, hi := bucketRange(histBuckets - 1); hi != math.MaxUint64 {
		t.Errorf("last bucket ends at %d, want MaxUint64", hi)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := r.Uint64() >> r.IntN(64)
		lo, hi := bucketRange(bucketOf(v))
		if v < lo || v > hi {
			t.Fatalf("%d in bucket %d of [%d, %d]", v, bucketOf(v), lo, hi)
		}
		if v >= 2*histSub && float64(hi-lo) > float64(lo)/histSub {
			t.Fatalf("bucket of %d is [%d, %d]: wider than 1/%d", v, lo, hi, histSub)
		}
	}
}

// exact is the nearest-rank quantile of sorted values.
func exact(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(1, min(rank, len(sorted)))-1]
}

func TestQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		gen  func(i int) time.Duration
		n    int
	}{
		{"one value", func(int) time.Duration { return 3 * time.Millisecond }, 1},
		{"uniform 1µs to 10ms", func(i int) time.Duration { return time.Duration(i+1) * time.Microsecond }, 10000},
		{"log-normal around 2ms", func(int) time.Duration {
			return time.Duration(2e6 * math.Exp(r.NormFloat64()))
		}, 50000},
		{"mostly fast, rare 2s stalls", func(i int) time.Duration {
			if i%1000 == 0 {
				return 2 * time.Second
			}
			return time.Duration(500+r.IntN(1000)) * time.Microsecond
		}, 20000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h histogram
			vals := make([]time.Duration, tc.n)
			for i := range vals {
				vals[i] = tc.gen(i)
				h.record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				got, want := h.quantile(q), exact(vals, q)
				if d := math.Abs(float64(got - want)); d > float64(want)/histSub {
					t.Errorf("q%v: %v, exactly %v (off by %.2f%%)", q, got, want, 100*d/float64(want))
				}
			}
			if h.min != vals[0] || h.max != vals[len(vals)-1] || h.n != uint64(tc.n) {
				t.Errorf("min %v max %v n %d, want %v %v %d", h.min, h.max, h.n, vals[0], vals[len(vals)-1], tc.n)
			}
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	var all, a, b histogram
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		all.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	var m histogram
	m.merge(&a)
	m.merge(&b)
	m.merge(&histogram{})
	if m.counts != all.counts || m.n != all.n || m.min != all.min || m.max != all.max {
		t.Fatalf("merged histogram differs from one recorded at once")
	}
	for _, q := range []float64{0.5, 0.99} {
		if m.quantile(q) != all.quantile(q) {
			t.Errorf("q%v: %v merged, %v at once", q, m.quantile(q), all.quantile(q))
		}
	}
	var empty histogram
	if empty.quantile(0.99) != 0 || empty.mean() != 0 {
		t.Errorf("empty histogram: q99 %v mean %v, want 0", empty.quantile(0.99), empty.mean())
	}
}

func TestPacer(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rate float64
		k    int64
		due  time.Duration
	}{
		{1, 0, 0},
		{1, 1, time.Second},
		{4, 10, 2500 * time.Millisecond},
		{3, 1, 333333333},
		{3, 3, time.Second},
		{1000, 1, time.Millisecond},
		{250000, 250000, time.Second},
		{0.5, 1, 2 * time.Second},
	} {
		p := pacer{start: start, rate: tc.rate}
		if got := p.due(tc.k).Sub(start); got != tc.due {
			t.Errorf("rate %v: request %d due after %v, want %v", tc.rate, tc.k, got, tc.due)
		}
	}
	for _, rate := range []float64{0.5, 1, 3, 7.3, 1000, 123456.7} {
		p := pacer{start: start, rate: rate}
		if n := p.dueBy(start.Add(-time.Nanosecond)); n != 0 {
			t.Errorf("rate %v: %d due before the start", rate, n)
		}
		for k := int64(0); k < 2000; k++ {
			at := p.due(k)
			if n := p.dueBy(at); n != k+1 {
				t.Fatalf("rate %v: %d due at request %d's time, want %d", rate, n, k, k+1)
			}
			if n := p.dueBy(at.Add(-time.Nanosecond)); n != k {
				t.Fatalf("rate %v: %d due just before request %d's time, want %d", rate, n, k, k)
			}
		}
	}
	// Over 10s at 250/s: 2500 requests start before the end (due < end).
	p := pacer{start: start, rate: 250}
	if n := p.dueBy(start.Add(10*time.Second - 1)); n != 2500 {
		t.Errorf("%d requests due in 10s at 250/s, want 2500", n)
	}
	if got := (pacer{start: start}).due(99); !got.Equal(start) {
		t.Errorf("unpaced: due %v, want the start", got)
	}
}
