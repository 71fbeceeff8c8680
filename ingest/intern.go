package ingest

import "sync"

// DefaultInternerCapacity is the number of strings an ingest source's
// interner holds: enough for the label names and the short label values of
// a few thousand live alerts.
const DefaultInternerCapacity = 16 << 10

// Interner hands out one shared copy of strings that recur, such as label
// names and values, so that the events decoded from many payloads do not
// each hold their own copy of "alertname" or "kube-state-metrics".
//
// It holds at most its capacity of strings. When it is full and a new
// string comes, it is emptied and fills again with the strings that come
// next: label values churn (pods, instances), so a table that stopped
// admitting would soon hold only stale strings. Strings already handed out
// stay valid; after a reset, a string is merely allocated again the first
// time it comes back.
//
// An Interner is safe for concurrent use.
type Interner struct {
	mu  sync.RWMutex
	m   map[string]string
	cap int
}

// NewInterner returns an empty interner that holds at most capacity
// strings; capacity <= 0 means DefaultInternerCapacity.
func NewInterner(capacity int) *Interner {
	if capacity <= 0 {
		capacity = DefaultInternerCapacity
	}
	return &Interner{m: make(map[string]string), cap: capacity}
}

// Intern returns a string equal to b, the same one every time while it is
// held. It allocates only when b is not held yet.
func (in *Interner) Intern(b []byte) string {
	in.mu.RLock()
	s, ok := in.m[string(b)] // no allocation: the compiler looks up b's bytes
	in.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	in.mu.Lock()
	defer in.mu.Unlock()
	if t, ok := in.m[s]; ok {
		return t // interned by another goroutine meanwhile
	}
	if len(in.m) >= in.cap {
		clear(in.m)
	}
	in.m[s] = s
	return s
}

// internPairs sets dst[i] to a string equal to src[i], for the keys (even
// i) and values (odd i) of an object: keys up to maxKey and values up to
// maxValue bytes long are interned, others allocated. It locks once, and a
// second time only when some strings are new.
func (in *Interner) internPairs(dst []string, src [][]byte, maxKey, maxValue int) {
	limits := [2]int{maxKey, maxValue}
	missed := false
	in.mu.RLock()
	for i, b := range src {
		if len(b) == 0 || len(b) > limits[i&1] {
			continue
		}
		if s, ok := in.m[string(b)]; ok {
			dst[i] = s
		} else {
			missed = true
		}
	}
	in.mu.RUnlock()
	if missed {
		in.mu.Lock()
		for i, b := range src {
			if len(b) == 0 || len(b) > limits[i&1] || dst[i] != "" {
				continue
			}
			s, ok := in.m[string(b)]
			if !ok {
				if len(in.m) >= in.cap {
					clear(in.m)
				}
				s = string(b)
				in.m[s] = s
			}
			dst[i] = s
		}
		in.mu.Unlock()
	}
	for i, b := range src {
		if len(b) > limits[i&1] {
			dst[i] = string(b)
		}
	}
}

// Len is the number of strings held, never more than the capacity.
func (in *Interner) Len() int {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return len(in.m)
}
