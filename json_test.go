package triage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// appendJSONer is what the types with a hand-written JSON encoder have.
type appendJSONer interface {
	AppendJSON([]byte) ([]byte, error)
}

// checkAppendJSON fails t unless v.AppendJSON appends what json.Marshal(v)
// returns, or fails with json.Marshal's error leaving b as it was.
func checkAppendJSON(t testing.TB, name string, v appendJSONer) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	prefix := []byte("prefix")
	got, err := v.AppendJSON(prefix)
	if wantErr != nil {
		if err == nil || err.Error() != wantErr.Error() || string(got) != "prefix" {
			t.Fatalf("%s: AppendJSON = %q, %v; json.Marshal fails with %v", name, got, err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: AppendJSON: %v; json.Marshal gives %s", name, err, want)
	}
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("%s: AppendJSON differs from json.Marshal\n got: %s\nwant: %s", name, got[min(len(prefix), len(got)):], want)
	}
}

// filler sets the exported fields of a value, recursively, to non-zero
// values, except those keep rejects. Paths name fields as Type.Field, with
// [] for slice elements and {} for map values. It fails on a field kind it
// does not know, so that a new field cannot go unchecked.
type filler struct {
	t     *testing.T
	keep  func(path string) bool
	paths []string // every path seen, in order
	n     int      // makes values distinct
}

var timeType = reflect.TypeFor[time.Time]()

func (f *filler) fill(v reflect.Value, path string) {
	f.paths = append(f.paths, path)
	if f.keep != nil && !f.keep(path) {
		v.SetZero()
		return
	}
	f.n++
	switch {
	case v.Type() == timeType:
		zone := time.FixedZone("X", (f.n%27-13)*3600+f.n%4*900)
		v.Set(reflect.ValueOf(time.Date(2020+f.n%10, time.Month(1+f.n%12), 1+f.n%28, f.n%24, f.n%60, f.n%60, f.n*7919%1000000000, zone)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("%s <&> \"é\"\u2028\t%d", path, f.n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(f.n) * 1_000_003)
	case reflect.Uint64:
		v.SetUint(uint64(f.n) * 1_000_003)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		f.fill(v.Elem(), path+"*")
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			f.fill(v.Index(i), path+"[]")
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			f.t.Fatalf("%s: filler knows no %s", path, v.Type())
		}
		m := reflect.MakeMap(v.Type())
		for _, k := range []string{"zeta", "alpha", "<b>", "alpha2"} {
			e := reflect.New(v.Type().Elem()).Elem()
			f.fill(e, path+"{}")
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			if !sf.IsExported() {
				f.t.Fatalf("%s: unexported field %s: the JSON guard cannot fill it", path, sf.Name)
			}
			f.fill(v.Field(i), v.Type().Name()+"."+sf.Name)
		}
	default:
		f.t.Fatalf("%s: filler knows no %s; teach it, and the JSON appenders, this kind", path, v.Type())
	}
}

// TestAppendJSONCoversEveryField fills every exported field, of the types
// with AppendJSON and of everything they hold, by reflection and compares
// with json.Marshal: the value with every field set, the zero value, every
// field alone and every field left out.
func TestAppendJSONCoversEveryField(t *testing.T) {
	for _, root := range []appendJSONer{&Incident{}, &Alert{}, &TimelineEntry{}, &Explanation{}} {
		typ := reflect.TypeOf(root).Elem()
		t.Run(typ.Name(), func(t *testing.T) {
			build := func(keep func(string) bool) (appendJSONer, []string) {
				f := &filler{t: t, keep: keep}
				v := reflect.New(typ)
				f.fill(v.Elem(), typ.Name())
				return v.Interface().(appendJSONer), f.paths
			}
			checkAppendJSON(t, "nil", reflect.Zero(reflect.PointerTo(typ)).Interface().(appendJSONer))
			checkAppendJSON(t, "zero", reflect.New(typ).Interface().(appendJSONer))
			full, paths := build(nil)
			checkAppendJSON(t, "every field", full)
			seen := map[string]bool{}
			for _, p := range paths[1:] {
				if seen[p] {
					continue
				}
				seen[p] = true
				without, _ := build(func(q string) bool { return q != p })
				checkAppendJSON(t, "without "+p, without)
				// p with what contains it and what it contains.
				only, _ := build(func(q string) bool { return q == typ.Name() || q == p || ancestors[p][q] || ancestors[q][p] })
				checkAppendJSON(t, "only "+p, only)
			}
			if len(seen) < typ.NumField() {
				t.Fatalf("walked %d paths, %s has %d fields", len(seen), typ, typ.NumField())
			}
		})
	}
}

// ancestors maps a path to the paths that contain it. Nested structs
// restart paths at their name, so the map is the union over every place
// a type appears.
var ancestors = func() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	var walk func(typ reflect.Type, path string, up []string)
	walk = func(typ reflect.Type, path string, up []string) {
		if out[path] == nil {
			out[path] = map[string]bool{}
		}
		for _, u := range up {
			out[path][u] = true
		}
		up = append(up[:len(up):len(up)], path)
		switch {
		case typ == timeType:
		case typ.Kind() == reflect.Pointer:
			walk(typ.Elem(), path+"*", up)
		case typ.Kind() == reflect.Slice:
			walk(typ.Elem(), path+"[]", up)
		case typ.Kind() == reflect.Map:
			walk(typ.Elem(), path+"{}", up)
		case typ.Kind() == reflect.Struct:
			for i := range typ.NumField() {
				walk(typ.Field(i).Type, typ.Name()+"."+typ.Field(i).Name, up)
			}
		}
	}
	for _, v := range []any{Incident{}, Alert{}, TimelineEntry{}, Explanation{}} {
		walk(reflect.TypeOf(v), reflect.TypeOf(v).Name(), nil)
	}
	return out
}()

func TestAppendStringMatchesMarshal(t *testing.T) {
	cases := []string{
		"", "plain", `quote " backslash \ slash /`, "<script>&amp;</script>",
		"\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f", "é ü 日本 🙂", "\u2028\u2029\u2027\u202a",
		"\xff", "a\xc3", "\xc3\x28", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xef\xbf\xbd",
		strings.Repeat("ab<", 100),
	}
	for c := range 256 {
		cases = append(cases, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	for _, r := range []rune{0x7ff, 0x800, 0xfffd, 0xfffe, 0x10000, utf8.MaxRune} {
		cases = append(cases, string(r))
	}
	for _, s := range cases {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, json.Marshal %s", s, got, want)
		}
	}
}

// TestAppendJSONTimes: times in every time field, as time.Time.MarshalJSON
// writes them (omitzero by IsZero, so a zero time in a zone is left out);
// those json.Marshal rejects fail with its error.
func TestAppendJSONTimes(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Time{}.In(time.FixedZone("CET", 3600)),
		time.Unix(0, 0),
		time.Date(2026, 11, 24, 23, 58, 0, 100000000, time.UTC),
		time.Date(2026, 11, 24, 23, 58, 0, 120000000, time.FixedZone("", 0)),
		time.Date(2026, 11, 24, 23, 58, 0, 1, time.FixedZone("NPT", 5*3600+45*60)),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.FixedZone("odd", -(3*3600+30*60+17))),
		time.Date(2026, 3, 29, 2, 30, 0, 0, time.FixedZone("tiny", 29)),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("max", 23*3600+59*60)),
		time.Now(), // with a monotonic reading
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 12, 31, 23, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 24*3600)),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", -100*3600)),
	} {
		tm2 := tm
		checkAppendJSON(t, "timeline entry "+tm.String(), &TimelineEntry{Time: tm})
		checkAppendJSON(t, "explanation "+tm.String(), &Explanation{At: tm})
		checkAppendJSON(t, "alert "+tm.String(), &Alert{StartsAt: tm, EndsAt: tm, FirstSeen: tm, LastSeen: tm, Joined: Explanation{At: tm}})
		checkAppendJSON(t, "alert ends_at "+tm.String(), &Alert{EndsAt: tm})
		checkAppendJSON(t, "incident "+tm.String(), &Incident{
			OpenedAt: tm, AcknowledgedAt: &tm, ResolvedAt: &tm2, AutoResolveAt: &tm, UpdatedAt: tm,
			Feedback: &Feedback{At: tm}, Alerts: []Alert{{LastSeen: tm}}, Explanation: []Explanation{{At: tm}}, Timeline: []TimelineEntry{{Time: tm}},
		})
		checkAppendJSON(t, "incident resolved_at "+tm.String(), &Incident{ResolvedAt: &tm, Alerts: []Alert{{LastSeen: tm}}})
		checkAppendJSON(t, "incident alerts "+tm.String(), &Incident{Alerts: []Alert{{}, {LastSeen: tm}}})
	}
}

// fuzzReader hands out values taken from fuzz input; zeros once it runs out.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) bool() bool { return r.byte()&1 == 1 }

func (r *fuzzReader) u64() uint64 {
	var buf [8]byte
	n := copy(buf[:], r.b[:min(int(r.byte()%9), len(r.b))])
	r.b = r.b[n:]
	return binary.LittleEndian.Uint64(buf[:])
}

func (r *fuzzReader) int() int { return int(r.u64()) }

func (r *fuzzReader) string() string {
	n := min(int(r.byte()%40), len(r.b))
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *fuzzReader) strings() []string {
	switch c := r.byte(); c % 4 {
	case 0:
		return nil
	case 1:
		return []string{}
	default:
		out := make([]string, c%5)
		for i := range out {
			out[i] = r.string()
		}
		return out
	}
}

func (r *fuzzReader) stringMap() map[string]string {
	c := r.byte()
	if c%4 == 0 {
		return nil
	}
	m := map[string]string{}
	for range c % 9 {
		m[r.string()] = r.string()
	}
	return m
}

var fuzzZones = []*time.Location{
	time.UTC, time.FixedZone("", 0), time.FixedZone("CET", 3600), time.FixedZone("NPT", 5*3600+45*60),
	time.FixedZone("odd", -(3*3600 + 30*60 + 17)), time.FixedZone("max", 23*3600+59*60),
	time.FixedZone("bad", 24*3600), time.FixedZone("tiny", 29), time.FixedZone("neg", -59),
}

func (r *fuzzReader) time() time.Time {
	switch c := r.byte(); c % 8 {
	case 0:
		return time.Time{}
	case 1:
		return time.Time{}.In(fuzzZones[int(r.byte())%len(fuzzZones)]) // zero, but not UTC
	case 2: // anything, including years json cannot encode
		return time.Unix(int64(r.u64()), int64(r.u64()%2e9)).In(fuzzZones[int(r.byte())%len(fuzzZones)])
	default: // a plausible time, with any nanoseconds
		sec := int64(r.u64() % (300 * 365 * 86400))
		var nsec int64
		switch c % 4 {
		case 0:
			nsec = int64(r.u64() % 1e9)
		case 1:
			nsec = int64(r.byte()) * 1e6
		}
		return time.Unix(sec, nsec).In(fuzzZones[int(r.byte())%len(fuzzZones)])
	}
}

func (r *fuzzReader) timePtr() *time.Time {
	if !r.bool() {
		return nil
	}
	t := r.time()
	return &t
}

func (r *fuzzReader) u64Ptr() *uint64 {
	if !r.bool() {
		return nil
	}
	v := r.u64()
	return &v
}

func (r *fuzzReader) explanation() Explanation {
	return Explanation{Fingerprint: r.string(), Reason: r.string(), Rule: r.string(), GroupKey: r.string(), Path: r.strings(), At: r.time()}
}

func (r *fuzzReader) timelineEntry() TimelineEntry {
	return TimelineEntry{Seq: r.u64(), Time: r.time(), Kind: r.string(), Actor: r.string(), Message: r.string(), Fingerprint: r.string()}
}

func (r *fuzzReader) alert() Alert {
	a := Alert{
		Fingerprint: r.string(), IncidentID: r.u64(), Source: r.string(), Status: AlertStatus(r.string()),
		Severity: r.string(), CI: r.string(), Labels: r.stringMap(), Annotations: r.stringMap(),
		Count: int64(r.u64()), StartsAt: r.time(), EndsAt: r.time(), FirstSeen: r.time(), LastSeen: r.time(),
		GeneratorURL: r.string(), Expired: r.bool(), Flapping: r.bool(), Maintenance: r.string(),
		Joined: r.explanation(),
	}
	if r.bool() {
		a.Binding = &Binding{CI: r.string(), Label: r.string(), Value: r.string(), Via: r.string()}
	}
	if r.bool() {
		a.Routing = &Routing{Severity: r.string(), Priority: r.string(), Service: r.string(), AssignmentGroup: r.string(), Project: r.string()}
	}
	return a
}

func (r *fuzzReader) incident() Incident {
	inc := Incident{
		ID: r.u64(), Key: r.string(), Title: r.string(), Status: IncidentStatus(r.string()), Priority: r.string(),
		PriorityReason: r.string(), Severity: r.string(), CI: r.string(), Service: r.string(), GroupKey: r.string(),
		Labels: r.stringMap(), AlertCount: r.int(), FiringCount: r.int(), EventCount: int64(r.u64()),
		OpenedAt: r.time(), AcknowledgedAt: r.timePtr(), ResolvedAt: r.timePtr(), AutoResolveAt: r.timePtr(),
		UpdatedAt: r.time(), ReopenCount: r.int(), RootCause: RootCause{CI: r.string(), Reason: r.string()},
		ProblemID: r.u64Ptr(), AssignmentGroup: r.string(), Project: r.string(), Held: r.bool(), OnHold: r.bool(),
		SLABreaches: r.int(), MergedInto: r.u64Ptr(),
	}
	if r.bool() {
		inc.Ticket = &Ticket{System: r.string(), Key: r.string(), URL: r.string()}
	}
	if r.bool() {
		inc.Feedback = &Feedback{Score: r.int(), Comment: r.string(), Actor: r.string(), At: r.time()}
	}
	if c := r.byte(); c%3 != 0 {
		inc.Merged = make([]uint64, c%4)
		for i := range inc.Merged {
			inc.Merged[i] = r.u64()
		}
	}
	if c := r.byte(); c%3 != 0 {
		inc.Alerts = make([]Alert, c%3)
		for i := range inc.Alerts {
			inc.Alerts[i] = r.alert()
		}
	}
	if c := r.byte(); c%3 != 0 {
		inc.Explanation = make([]Explanation, c%3)
		for i := range inc.Explanation {
			inc.Explanation[i] = r.explanation()
		}
	}
	if c := r.byte(); c%3 != 0 {
		inc.Timeline = make([]TimelineEntry, c%3)
		for i := range inc.Timeline {
			inc.Timeline[i] = r.timelineEntry()
		}
	}
	return inc
}

// FuzzAppendJSONMatchesMarshal builds an incident, an alert and a timeline
// entry from the input (arbitrary bytes in strings and map keys, nil and
// empty maps and slices, times of any zone, nanoseconds and year) and
// requires AppendJSON to match json.Marshal, errors included.
func FuzzAppendJSONMatchesMarshal(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x05hello\x03<&>\x00\xff\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Add(bytes.Repeat([]byte{0x03, 0xe2, 0x80, 0xa8, 0x83, 0xc3, 0xff, 0x01, 0x02}, 40))
	f.Add(bytes.Repeat([]byte{0xff}, 600))
	f.Add(bytes.Repeat([]byte("\x02\x08\x01\x00\x00\x00\x00\x00\x80\x7f\x05"), 60))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{b: data}
		inc := r.incident()
		checkAppendJSON(t, "incident", &inc)
		a := r.alert()
		checkAppendJSON(t, "alert", &a)
		e := r.timelineEntry()
		checkAppendJSON(t, "timeline entry", &e)
		x := r.explanation()
		checkAppendJSON(t, "explanation", &x)
	})
}

// benchIncident is an incident record as the correlation store writes it:
// no alerts, explanation or timeline.
func benchIncident() *Incident {
	opened := time.Date(2026, 11, 24, 23, 58, 1, 123456789, time.UTC)
	ack := opened.Add(3*time.Minute + 417*time.Millisecond)
	problem := uint64(17)
	return &Incident{
		ID: 4211, Key: "INC-4211", Title: "HighErrorRate on orders (orders-db)", Status: IncidentAcknowledged,
		Priority: "P2", PriorityReason: "impact high × urgency medium", Severity: SeverityError,
		CI: "db-orders", Service: "orders", GroupKey: "alertname=HighErrorRate,service=orders",
		Labels:     map[string]string{"alertname": "HighErrorRate", "service": "orders", "env": "prod"},
		AlertCount: 4, FiringCount: 3, EventCount: 57,
		OpenedAt: opened, AcknowledgedAt: &ack, UpdatedAt: opened.Add(9*time.Minute + 2*time.Second),
		RootCause: RootCause{CI: "db-orders", Reason: "3 alerts on CIs that depend on db-orders"},
		ProblemID: &problem, AssignmentGroup: "dba",
	}
}

// benchAlert is an alert's details as the correlation store writes them.
func benchAlert() *Alert {
	start := time.Date(2026, 11, 24, 23, 57, 30, 0, time.UTC)
	return &Alert{
		Fingerprint: "a3f09b1c62d4e875", IncidentID: 4211, Source: "alertmanager", Status: AlertFiring,
		Severity: SeverityCritical, CI: "db-orders",
		Labels: map[string]string{
			"alertname": "HighErrorRate", "service": "orders", "instance": "orders-db.prod:9187",
			"job": "postgres", "severity": "critical", "env": "prod", "team": "dba",
		},
		Annotations: map[string]string{
			"summary":     "Error rate above 5% on orders-db",
			"description": "5xx ratio is 7.3% over the last 5m (threshold 5%).",
			"runbook_url": "https://runbooks.example.com/orders/high-error-rate",
		},
		Count: 12, StartsAt: start, FirstSeen: start.Add(412 * time.Millisecond), LastSeen: start.Add(11*time.Minute + 3*time.Second),
		GeneratorURL: "http://prometheus.prod:9090/graph?g0.expr=rate%28http_requests_total%7Bcode%3D~%225..%22%7D%5B5m%5D%29&g0.tab=1",
		Binding:      &Binding{CI: "db-orders", Label: "instance", Value: "orders-db.prod", Via: "alias"},
		Joined: Explanation{
			Fingerprint: "a3f09b1c62d4e875", Reason: "topology", Rule: "db-cascade",
			GroupKey: "alertname=HighErrorRate,service=orders", Path: []string{"svc-orders", "db-orders"},
			At: start.Add(412 * time.Millisecond),
		},
	}
}

func benchmarkJSON(b *testing.B, v appendJSONer) {
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = v.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIncidentJSON: the incident record the store writes on every
// change of an incident.
func BenchmarkIncidentJSON(b *testing.B) { benchmarkJSON(b, benchIncident()) }

// BenchmarkAlertJSON: an alert's details, written when the alert is new.
func BenchmarkAlertJSON(b *testing.B) { benchmarkJSON(b, benchAlert()) }

// BenchmarkTimelineEntryJSON: one timeline entry.
func BenchmarkTimelineEntryJSON(b *testing.B) {
	benchmarkJSON(b, &TimelineEntry{
		Seq: 91234, Time: time.Date(2026, 11, 24, 23, 58, 1, 123456789, time.UTC), Kind: KindAlertAdded,
		Actor: ActorSystem, Message: "HighErrorRate on db-orders joined by topology", Fingerprint: "a3f09b1c62d4e875",
	})
}
