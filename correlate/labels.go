package correlate

import (
	"encoding/binary"
	"slices"
	"strings"
)

// packedLabels is an alert's label set in one string: for each label,
// sorted by name, the uvarint length and bytes of the name, then of the
// value. A live alert keeps its labels packed once its details are
// written: one allocation of about the labels' text instead of a map of
// 300-odd bytes plus its strings, and one pointer for the garbage collector
// to follow instead of two per label. The map is rebuilt when an old alert
// is grouped again (a merge, a reopen, a reload).
type packedLabels string

func packLabels(labels map[string]string) packedLabels {
	if len(labels) == 0 {
		return ""
	}
	var buf [16]string // most alerts have fewer labels: no allocation for the names
	names := buf[:0]
	n := 0
	for k, v := range labels {
		names = append(names, k)
		n += uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v)
	}
	slices.Sort(names)
	var b strings.Builder // one allocation: the packed string itself
	b.Grow(n)
	var num [binary.MaxVarintLen64]byte
	for _, k := range names {
		b.Write(binary.AppendUvarint(num[:0], uint64(len(k))))
		b.WriteString(k)
		v := labels[k]
		b.Write(binary.AppendUvarint(num[:0], uint64(len(v))))
		b.WriteString(v)
	}
	return packedLabels(b.String())
}

func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

// each calls fn with every label in name order until fn returns false.
func (p packedLabels) each(fn func(name, value string) bool) {
	s := string(p)
	next := func() (string, bool) {
		l, n := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
		if n <= 0 || l > uint64(len(s)-n) {
			return "", false
		}
		v := s[n : n+int(l)]
		s = s[n+int(l):]
		return v, true
	}
	for len(s) > 0 {
		k, ok := next()
		if !ok {
			return
		}
		v, ok := next()
		if !ok || !fn(k, v) {
			return
		}
	}
}

// get is the value of one label, "" when absent.
func (p packedLabels) get(name string) string {
	var out string
	p.each(func(k, v string) bool {
		if k == name {
			out = v
			return false
		}
		return k < name // sorted: past it, it is absent
	})
	return out
}

// unpack rebuilds the map. Its strings share the packed string's memory.
func (p packedLabels) unpack() map[string]string {
	m := map[string]string{}
	p.each(func(k, v string) bool {
		m[k] = v
		return true
	})
	return m
}

// label is one of the alert's labels, from its map while it has one, else
// from its packed labels.
func (a *alertState) label(name string) string {
	if a.Labels != nil {
		return a.Labels[name]
	}
	return a.packed.get(name)
}

// labels is the alert's label map, rebuilt from its packed labels when the
// alert keeps only those: the caller must not keep it in the alert.
func (a *alertState) labels() map[string]string {
	if a.Labels != nil || a.packed == "" {
		return a.Labels
	}
	return a.packed.unpack()
}

// withLabels runs fn with the alert's label map in place, for code that
// reads an alert's labels through its triage.Alert (the grouper), and
// leaves the alert as it was.
func (a *alertState) withLabels(fn func()) {
	if a.Labels != nil || a.packed == "" {
		fn()
		return
	}
	a.Labels = a.packed.unpack()
	defer func() { a.Labels = nil }()
	fn()
}

// shedLabels keeps only the packed labels once the alert's details are
// written.
func (a *alertState) shedLabels() {
	if a.Labels == nil {
		return
	}
	if a.packed == "" {
		a.packed = packLabels(a.Labels)
	}
	a.Labels = nil
}

// name is the alert's alertname, or its fingerprint without one.
func (a *alertState) name() string {
	if n := a.label("alertname"); n != "" {
		return n
	}
	return "alert " + a.Fingerprint
}
