package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram records durations in log-linear buckets, as HdrHistogram does:
// each power of two is split into 64 linear sub-buckets, so a recorded value
// is known to within 1/64 (reported at the bucket's midpoint, so within
// 1/128), from 1ns to the largest time.Duration, in 30 KiB. Histograms of
// different senders merge by adding counts.
type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      float64
	min, max time.Duration
}

const (
	histSubBits = 6 // 64 sub-buckets per power of two
	histSub     = 1 << histSubBits
	histBuckets = (64-histSubBits)*histSub + histSub
)

// bucketOf maps v >= 0 to its bucket: values below 2*histSub have a bucket
// each; above, bucket s*histSub+(v>>s) where s makes v>>s fall in
// [histSub, 2*histSub).
func bucketOf(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	s := bits.Len64(v) - histSubBits - 1
	return s*histSub + int(v>>s)
}

// bucketRange returns the smallest and largest values of bucket b.
func bucketRange(b int) (lo, hi uint64) {
	if b < 2*histSub {
		return uint64(b), uint64(b)
	}
	s := b/histSub - 1
	sub := uint64(b - s*histSub)
	return sub << s, (sub+1)<<s - 1
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += float64(d)
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the q-quantile (0 < q <= 1) by nearest rank: the value
// below which a fraction q of the recordings fall, within 1/128, clamped to
// the recorded min and max.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(1, min(rank, h.n))
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(b)
			v := time.Duration(lo + (hi-lo)/2)
			return max(h.min, min(v, h.max))
		}
	}
	return h.max
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// pacer is the open-loop schedule shared by all senders at --rate: request k
// of a phase is due at start + k/rate whatever happened to earlier requests,
// so a slow response delays no later request's due time. A request that is
// sent after its due time (every sender was busy) is late by the difference,
// and its latency is measured from the due time, not from when it was sent:
// that is what a client sending at that rate would have seen (no
// coordinated omission).
type pacer struct {
	start time.Time
	rate  float64 // requests per second; 0 means no pacing
}

// due returns when request k (from 0) of the phase is due.
func (p pacer) due(k int64) time.Time {
	if p.rate <= 0 {
		return p.start
	}
	return p.start.Add(time.Duration(float64(k) * float64(time.Second) / p.rate))
}

// dueBy returns how many requests are due at or before t.
func (p pacer) dueBy(t time.Time) int64 {
	if p.rate <= 0 || t.Before(p.start) {
		return 0
	}
	// Estimate, then correct for the rounding of due to whole nanoseconds.
	n := int64(math.Floor(t.Sub(p.start).Seconds()*p.rate)) + 1
	for n > 0 && p.due(n-1).After(t) {
		n--
	}
	for !p.due(n).After(t) {
		n++
	}
	return n
}

// lateThreshold is how late a paced request may start before it counts as
// the generator not keeping up.
const lateThreshold = 10 * time.Millisecond
