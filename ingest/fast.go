package ingest

import (
	"bytes"
	"encoding/binary"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/triage-dev/triage"
)

// The fast path decodes the payloads senders actually send, compact or
// indented JSON of the expected shape, without reflection, and produces
// exactly the events encoding/json would. It accepts only what it is sure
// of: on anything else it reports !ok and the caller runs the encoding/json
// path, which then decides, so that errors and edge cases stay exactly as
// that path has them. It gives up on:
//
//   - any syntax error, and trailing data after the value;
//   - null anywhere, and a value of another type than the field's;
//   - a key that matches a field other than exactly (encoding/json also
//     takes "Labels" or "LABELS" for labels), a field key with escapes, any
//     key of a strict format that is not one of its fields, and non-ASCII
//     unknown keys (with Unicode folding, "ſtatus" is status);
//   - a field given twice, and a key given twice in labels or annotations;
//   - a time with escapes or that time.Time.UnmarshalJSON rejects;
//   - a \u escape of a lone or reversed UTF-16 surrogate;
//   - numbers, except truncatedAlerts as a plain integer of up to 19 digits
//     (and numbers anywhere inside skipped unknown fields);
//   - a webhook payload whose version is neither "4" nor empty, or that has
//     no alerts (encoding/json's path rejects both);
//   - unknown fields nested deeper than maxSkipDepth.
//
// Bodies reach it only after checkBody: they are valid UTF-8.

// Strings up to these lengths are interned: label names (no valid one is
// longer), and label values, annotation names, fingerprints and the like.
// Longer ones are mostly unique (descriptions, URLs) and allocated as they are.
const (
	maxInternKey   = 256
	maxInternValue = 64
	maxSkipDepth   = 64
)

// scanner reads one body. Its methods advance i past what they read and
// return false when the fast path must give up.
type scanner struct {
	b   []byte
	i   int
	in  *Interner // nil: allocate every string
	buf []byte    // unescaped string, reused
}

// strPlain marks the bytes that stand for themselves inside a JSON string.
// Bytes of multi-byte UTF-8 sequences do: the body is valid UTF-8.
var strPlain = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat reads c, after whitespace.
func (s *scanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// peek reports whether the next byte, after whitespace, is c.
func (s *scanner) peek(c byte) bool {
	s.ws()
	return s.i < len(s.b) && s.b[s.i] == c
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// next reads the ',' between members, or the closing delimiter: more says
// whether another member follows.
func (s *scanner) next(closing byte) (more, ok bool) {
	s.ws()
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case ',':
			s.i++
			return true, true
		case closing:
			s.i++
			return false, true
		}
	}
	return false, false
}

// open reads the opening delimiter of an object or array and reports
// whether it has members.
func (s *scanner) open(c, closing byte) (members, ok bool) {
	if !s.eat(c) {
		return false, false
	}
	if s.peek(closing) {
		s.i++
		return false, true
	}
	return true, true
}

// str reads a string and returns where its content is and whether it has
// escapes, all of which it checks.
func (s *scanner) str() (start, end int, esc, ok bool) {
	b, i := s.b, s.i
	if i >= len(b) || b[i] != '"' {
		return
	}
	i++
	start = i
	for {
		for i+8 <= len(b) && !special(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return
		}
		switch b[i] {
		case '"':
			s.i = i + 1
			return start, i, esc, true
		case '\\':
			esc = true
			if i+1 >= len(b) {
				return
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || hex4(b[i+2:i+6]) < 0 {
					return
				}
				i += 6
			default:
				return
			}
		default: // a control character
			return
		}
	}
}

// special reports whether any of the 8 bytes in x is a quote, a backslash
// or a control character (bit tricks from "Bit Twiddling Hacks": a byte is
// zero, or less than n, without carries between bytes).
func special(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	return ((x-ones*0x20)&^x|(q-ones)&^q|(bs-ones)&^bs)&highs != 0
}

// key reads an object key and the colon after it. Keys of struct fields
// must not have escapes.
func (s *scanner) key() ([]byte, bool) {
	s.ws()
	start, end, esc, ok := s.str()
	if !ok || esc || !s.eat(':') {
		return nil, false
	}
	s.ws()
	return s.b[start:end], true
}

// text reads a string value; strings up to max bytes are interned.
func (s *scanner) text(max int) (string, bool) {
	start, end, esc, ok := s.str()
	if !ok {
		return "", false
	}
	raw := s.b[start:end]
	if esc {
		s.buf = s.buf[:0]
		if raw, ok = s.unescape(raw); !ok {
			return "", false
		}
	}
	if s.in != nil && len(raw) > 0 && len(raw) <= max {
		return s.in.Intern(raw), true
	}
	return string(raw), true
}

// status reads an alert status, without allocating the usual ones.
func (s *scanner) status() (triage.AlertStatus, bool) {
	from := s.i
	start, end, esc, ok := s.str()
	if !ok {
		return "", false
	}
	if !esc {
		switch string(s.b[start:end]) {
		case "firing":
			return triage.AlertFiring, true
		case "resolved":
			return triage.AlertResolved, true
		}
	}
	s.i = from
	t, ok := s.text(maxInternValue)
	return triage.AlertStatus(t), ok
}

// unescape decodes the escapes of a string's content, which str checked,
// as encoding/json does, except that it gives up on surrogates that do not
// pair (encoding/json puts U+FFFD for them). It appends the result to
// s.buf: what it returned before stays valid.
func (s *scanner) unescape(raw []byte) ([]byte, bool) {
	if s.buf == nil {
		s.buf = make([]byte, 0, max(1024, 2*len(raw)))
	}
	from := len(s.buf)
	out := s.buf
	for len(raw) > 0 {
		n := bytes.IndexByte(raw, '\\')
		if n < 0 {
			out = append(out, raw...)
			break
		}
		out = append(out, raw[:n]...)
		raw = raw[n:]
		if len(raw) < 2 {
			return nil, false
		}
		switch c := raw[1]; c {
		case '"', '\\', '/':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if len(raw) < 6 {
				return nil, false
			}
			r := hex4(raw[2:6])
			if r < 0 {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				if len(raw) < 12 || raw[6] != '\\' || raw[7] != 'u' {
					return nil, false
				}
				r = utf16.DecodeRune(r, hex4(raw[8:12]))
				if r == utf8.RuneError {
					return nil, false
				}
				raw = raw[6:]
			}
			out = utf8.AppendRune(out, r)
			raw = raw[6:]
			continue
		default:
			return nil, false
		}
		raw = raw[2:]
	}
	s.buf = out
	return out[from:len(out):len(out)], true
}

// hex4 is the value of four hex digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// timeValue reads a time as encoding/json does: time.Time.UnmarshalJSON gets the
// string with its quotes.
func (s *scanner) timeValue(t *time.Time) bool {
	start := s.i
	_, _, esc, ok := s.str()
	return ok && !esc && t.UnmarshalJSON(s.b[start:s.i]) == nil
}

// strMap reads an object of strings. Keys up to maxKey and values up to
// maxValue bytes are interned. An empty object gives an empty map, as in
// encoding/json.
func (s *scanner) strMap(maxKey, maxValue int) (map[string]string, bool) {
	more, ok := s.open('{', '}')
	if !ok {
		return nil, false
	}
	// Keys and values, one after the other, then as strings: interned all
	// at once, and in a map of the right size.
	var rawArr [32][]byte
	raws := rawArr[:0]
	s.buf = s.buf[:0]
	for more {
		s.ws()
		k, ok := s.raw()
		if !ok || !s.eat(':') {
			return nil, false
		}
		s.ws()
		v, ok := s.raw()
		if !ok {
			return nil, false
		}
		raws = append(raws, k, v)
		if more, ok = s.next('}'); !ok {
			return nil, false
		}
	}
	var strArr [32]string
	strs := strArr[:0]
	if len(raws) > len(strArr) {
		strs = make([]string, 0, len(raws))
	}
	strs = strs[:len(raws)]
	if s.in != nil {
		s.in.internPairs(strs, raws, maxKey, maxValue)
	} else {
		for i, b := range raws {
			strs[i] = string(b)
		}
	}
	m := make(map[string]string, len(strs)/2)
	for i := 0; i < len(strs); i += 2 {
		m[strs[i]] = strs[i+1]
	}
	if len(m) != len(strs)/2 {
		return nil, false // a key given twice
	}
	return m, true
}

// raw reads a string and returns its content, unescaped.
func (s *scanner) raw() ([]byte, bool) {
	start, end, esc, ok := s.str()
	if !ok {
		return nil, false
	}
	if esc {
		return s.unescape(s.b[start:end])
	}
	return s.b[start:end], true
}

// skipStrMap checks an object of strings whose content is not kept.
func (s *scanner) skipStrMap() bool {
	more, ok := s.open('{', '}')
	for ok && more {
		s.ws()
		if _, _, _, ok = s.str(); !ok || !s.eat(':') {
			return false
		}
		s.ws()
		if _, _, _, ok = s.str(); !ok {
			return false
		}
		more, ok = s.next('}')
	}
	return ok
}

// skipString checks a string whose content is not kept.
func (s *scanner) skipString() bool {
	_, _, _, ok := s.str()
	return ok
}

// skip checks and drops any JSON value but null, as encoding/json does an
// unknown field's.
func (s *scanner) skip(depth int) bool {
	if s.i >= len(s.b) || depth > maxSkipDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{':
		more, ok := s.open('{', '}')
		for ok && more {
			s.ws()
			if _, _, _, ok = s.str(); !ok || !s.eat(':') {
				return false
			}
			s.ws()
			if !s.skip(depth + 1) {
				return false
			}
			more, ok = s.next('}')
		}
		return ok
	case c == '[':
		more, ok := s.open('[', ']')
		for ok && more {
			s.ws()
			if !s.skip(depth + 1) {
				return false
			}
			more, ok = s.next(']')
		}
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// number checks a JSON number. What follows it is the caller's to check.
func (s *scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return false
		}
		i = j
	}
	s.i = i
	return true
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// smallUint checks an integer that surely fits a uint64, as truncatedAlerts.
func (s *scanner) smallUint() bool {
	start := s.i
	if !s.number() {
		return false
	}
	n := s.b[start:s.i]
	return len(n) <= 19 && bytes.IndexAny(n, "-.eE") < 0
}

// unknown skips the value of a key that is not a field, unless
// encoding/json would decode it into one of fields (it matches keys
// case-insensitively, with Unicode folding: "ſtatus" is status).
func (s *scanner) unknown(key []byte, fields []string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for _, f := range fields {
		if asciiEqualFold(f, key) {
			return false
		}
	}
	return s.skip(0)
}

func asciiEqualFold(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := range len(b) {
		x, y := s[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// fields seen in one object, to give up on a field given twice.
type seen uint16

func (f *seen) add(bit seen) bool {
	if *f&bit != 0 {
		return false
	}
	*f |= bit
	return true
}

// Formats of array elements.
const (
	postableAlert = iota
	webhookAlert
	genericEvent
)

// array reads an array of objects of one format. (A switch rather than a
// function value: through one, each event would escape to the heap.)
func (s *scanner) array(format int) ([]triage.Event, bool) {
	more, ok := s.open('[', ']')
	if !ok {
		return nil, false
	}
	// Short arrays need no allocation but the final one, of the exact length.
	var first [16]triage.Event
	evs := first[:0]
	for more {
		var ev triage.Event
		switch format {
		case postableAlert:
			ok = s.postable(&ev)
		case webhookAlert:
			ok = s.webhookAlert(&ev)
		default:
			ok = s.event(&ev)
		}
		if !ok {
			return nil, false
		}
		evs = append(evs, ev)
		if more, ok = s.next(']'); !ok {
			return nil, false
		}
	}
	out := make([]triage.Event, len(evs))
	copy(out, evs)
	return out, true
}

var postableFields = []string{"labels", "annotations", "startsAt", "endsAt", "generatorURL"}

// postableAlerts reads a POST /api/v2/alerts body.
func (s *scanner) postableAlerts() ([]triage.Event, bool) {
	evs, ok := s.array(postableAlert)
	if !ok || !s.end() {
		return nil, false
	}
	return evs, true
}

func (s *scanner) postable(ev *triage.Event) bool {
	more, ok := s.open('{', '}')
	if !ok {
		return false
	}
	var f seen
	for more {
		key, ok := s.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "labels":
			if ok = f.add(1 << 0); ok {
				ev.Labels, ok = s.strMap(maxInternKey, maxInternValue)
			}
		case "annotations":
			if ok = f.add(1 << 1); ok {
				ev.Annotations, ok = s.strMap(maxInternValue, 0)
			}
		case "startsAt":
			ok = f.add(1<<2) && s.timeValue(&ev.StartsAt)
		case "endsAt":
			ok = f.add(1<<3) && s.timeValue(&ev.EndsAt)
		case "generatorURL":
			if ok = f.add(1 << 4); ok {
				ev.GeneratorURL, ok = s.text(0)
			}
		default:
			ok = s.unknown(key, postableFields)
		}
		if !ok {
			return false
		}
		if more, ok = s.next('}'); !ok {
			return false
		}
	}
	ev.Source = SourcePrometheus
	return true
}

var (
	webhookFields = []string{"receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations",
		"externalURL", "version", "groupKey", "truncatedAlerts"}
	webhookAlertFields = []string{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
)

// webhook reads an Alertmanager webhook payload, version 4.
func (s *scanner) webhook() ([]triage.Event, bool) {
	more, ok := s.open('{', '}')
	if !ok {
		return nil, false
	}
	var f seen
	var evs []triage.Event
	for more {
		key, ok := s.key()
		if !ok {
			return nil, false
		}
		switch string(key) {
		case "receiver":
			ok = f.add(1<<0) && s.skipString()
		case "status":
			ok = f.add(1<<1) && s.skipString()
		case "externalURL":
			ok = f.add(1<<2) && s.skipString()
		case "groupKey":
			ok = f.add(1<<3) && s.skipString()
		case "version":
			if ok = f.add(1 << 4); ok {
				start, end, esc, str := s.str()
				ok = str && !esc && (end == start || string(s.b[start:end]) == "4")
			}
		case "alerts":
			if ok = f.add(1 << 5); ok {
				evs, ok = s.array(webhookAlert)
			}
		case "groupLabels":
			ok = f.add(1<<6) && s.skipStrMap()
		case "commonLabels":
			ok = f.add(1<<7) && s.skipStrMap()
		case "commonAnnotations":
			ok = f.add(1<<8) && s.skipStrMap()
		case "truncatedAlerts":
			ok = f.add(1<<9) && s.smallUint()
		default:
			ok = s.unknown(key, webhookFields)
		}
		if !ok {
			return nil, false
		}
		if more, ok = s.next('}'); !ok {
			return nil, false
		}
	}
	if evs == nil || !s.end() {
		return nil, false // no alerts: not a webhook payload
	}
	return evs, true
}

func (s *scanner) webhookAlert(ev *triage.Event) bool {
	more, ok := s.open('{', '}')
	if !ok {
		return false
	}
	var f seen
	var endsAt time.Time
	for more {
		key, ok := s.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "status":
			if ok = f.add(1 << 0); ok {
				ev.Status, ok = s.status()
			}
		case "labels":
			if ok = f.add(1 << 1); ok {
				ev.Labels, ok = s.strMap(maxInternKey, maxInternValue)
			}
		case "annotations":
			if ok = f.add(1 << 2); ok {
				ev.Annotations, ok = s.strMap(maxInternValue, 0)
			}
		case "startsAt":
			ok = f.add(1<<3) && s.timeValue(&ev.StartsAt)
		case "endsAt":
			ok = f.add(1<<4) && s.timeValue(&endsAt)
		case "generatorURL":
			if ok = f.add(1 << 5); ok {
				ev.GeneratorURL, ok = s.text(0)
			}
		case "fingerprint":
			if ok = f.add(1 << 6); ok {
				ev.Fingerprint, ok = s.text(maxInternValue)
			}
		default:
			ok = s.unknown(key, webhookAlertFields)
		}
		if !ok {
			return false
		}
		if more, ok = s.next('}'); !ok {
			return false
		}
	}
	ev.Source = SourceAlertmanager
	if ev.Status == triage.AlertResolved {
		ev.EndsAt = endsAt
	}
	return true
}

// events reads the generic events format: one event or an array of them.
// Their source is left empty when they do not name one.
func (s *scanner) events() ([]triage.Event, bool) {
	var evs []triage.Event
	if s.peek('[') {
		var ok bool
		if evs, ok = s.array(genericEvent); !ok {
			return nil, false
		}
	} else {
		var ev triage.Event
		if !s.event(&ev) {
			return nil, false
		}
		evs = []triage.Event{ev}
	}
	if !s.end() {
		return nil, false
	}
	return evs, true
}

// event reads one generic event. The format is strict: every key must be
// one of its fields.
func (s *scanner) event(ev *triage.Event) bool {
	more, ok := s.open('{', '}')
	if !ok {
		return false
	}
	var f seen
	for more {
		key, ok := s.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "source":
			if ok = f.add(1 << 0); ok {
				ev.Source, ok = s.text(maxInternValue)
			}
		case "fingerprint":
			if ok = f.add(1 << 1); ok {
				ev.Fingerprint, ok = s.text(maxInternValue)
			}
		case "status":
			if ok = f.add(1 << 2); ok {
				ev.Status, ok = s.status()
			}
		case "severity":
			if ok = f.add(1 << 3); ok {
				ev.Severity, ok = s.text(maxInternValue)
			}
		case "labels":
			if ok = f.add(1 << 4); ok {
				ev.Labels, ok = s.strMap(maxInternKey, maxInternValue)
			}
		case "annotations":
			if ok = f.add(1 << 5); ok {
				ev.Annotations, ok = s.strMap(maxInternValue, 0)
			}
		case "starts_at":
			ok = f.add(1<<6) && s.timeValue(&ev.StartsAt)
		case "ends_at":
			ok = f.add(1<<7) && s.timeValue(&ev.EndsAt)
		case "time":
			ok = f.add(1<<8) && s.timeValue(&ev.Time)
		case "generator_url":
			if ok = f.add(1 << 9); ok {
				ev.GeneratorURL, ok = s.text(0)
			}
		default:
			ok = false // unknown fields are errors, and case variants are for encoding/json to take
		}
		if !ok {
			return false
		}
		if more, ok = s.next('}'); !ok {
			return false
		}
	}
	return true
}
