package jirafake

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// limiter is a token bucket per user, on the server's clock.
type limiter struct {
	rate, burst float64
	mu          sync.Mutex
	buckets     map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(r RateLimit) *limiter {
	burst := float64(r.Burst)
	if burst <= 0 {
		burst = math.Max(1, math.Ceil(r.PerSecond))
	}
	return &limiter{rate: r.PerSecond, burst: burst, buckets: map[string]*bucket{}}
}

// allow takes a token for key, or answers 429 with Atlassian's rate limit headers.
func (l *limiter) allow(w http.ResponseWriter, key string, now time.Time, cloud bool) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if now.After(b.last) {
		b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
		b.last = now
	}
	ok := b.tokens >= 1
	if ok {
		b.tokens--
	}
	remaining := math.Floor(b.tokens)
	wait := (1 - b.tokens) / l.rate
	l.mu.Unlock()

	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(int(l.burst)))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(int(math.Max(0, remaining))))
	if !cloud {
		h.Set("X-RateLimit-FillRate", strconv.FormatFloat(l.rate, 'f', -1, 64))
		h.Set("X-RateLimit-Interval-Seconds", "1")
	} else if remaining < 0.2*l.burst {
		h.Set("X-RateLimit-NearLimit", "true")
	}
	if ok {
		return true
	}
	retry := int(math.Max(1, math.Ceil(wait)))
	h.Set("Retry-After", strconv.Itoa(retry))
	h.Set("X-RateLimit-Reset", now.Add(time.Duration(retry)*time.Second).UTC().Format("2006-01-02T15:04Z"))
	if cloud {
		h.Set("RateLimit-Reason", "jira-burst-based")
	}
	writeError(w, http.StatusTooManyRequests, []string{"Rate limit exceeded."}, nil)
	return false
}
