package ingest_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/ingest"
)

// formats are the names of ingest.Paths, in a fixed order.
var formats = []string{"postable", "webhook", "events", "kafka"}

// diffEvents says how two decodings differ, or returns "" when they are
// the same: same nil-ness of slices and maps, same strings, and times that
// are the same instant at the same offset.
func diffEvents(got, want []triage.Event) string {
	if (got == nil) != (want == nil) || len(got) != len(want) {
		return fmt.Sprintf("%d events (nil %t), want %d (nil %t)", len(got), got == nil, len(want), want == nil)
	}
	for i := range got {
		g, w := got[i], want[i]
		for _, t := range []struct {
			name string
			g, w time.Time
		}{{"StartsAt", g.StartsAt, w.StartsAt}, {"EndsAt", g.EndsAt, w.EndsAt}, {"Time", g.Time, w.Time}} {
			_, gOff := t.g.Zone()
			_, wOff := t.w.Zone()
			if !t.g.Equal(t.w) || gOff != wOff {
				return fmt.Sprintf("event %d: %s %s, want %s", i, t.name, t.g, t.w)
			}
		}
		g.StartsAt, g.EndsAt, g.Time = time.Time{}, time.Time{}, time.Time{}
		w.StartsAt, w.EndsAt, w.Time = time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("event %d:\n got %#v\nwant %#v", i, g, w)
		}
	}
	return ""
}

// plain decodes without interning; tiny interns through an interner that
// is full after a few strings, so that it is emptied again and again.
var (
	plain = ingest.NewDecoder(nil)
	tiny  = ingest.NewDecoder(ingest.NewInterner(5))
)

// checkFastMatchesStrict is the property the fast path keeps: when it
// accepts a body, encoding/json's path accepts it too and gives the same
// events; and what callers get is what encoding/json's path gives, error
// message included. It reports whether the fast path took the body.
func checkFastMatchesStrict(t *testing.T, format string, body []byte) (fast bool) {
	t.Helper()
	p := ingest.Paths[format]
	want, wantErr := p.Strict(body)
	if p.Fast != nil && ingest.CheckBody(body) == nil {
		got, ok := p.Fast(plain, body)
		got2, ok2 := p.Fast(tiny, body)
		if ok != ok2 {
			t.Fatalf("%s: fast path took the body %t without interning, %t with", format, ok, ok2)
		}
		if ok {
			if wantErr != nil {
				t.Fatalf("%s: fast path took a body encoding/json rejects (%v): %q", format, wantErr, body)
			}
			if d := diffEvents(got, want); d != "" {
				t.Fatalf("%s: fast path differs from encoding/json's on %q: %s", format, body, d)
			}
			if d := diffEvents(got2, want); d != "" {
				t.Fatalf("%s: fast path with interning differs from encoding/json's on %q: %s", format, body, d)
			}
		}
		fast = ok
	}
	for _, d := range []*ingest.Decoder{plain, tiny} {
		got, err := p.Public(d, body)
		if wantErr != nil {
			var de, wantDE *ingest.DecodeError
			if err == nil || err.Error() != wantErr.Error() || !errors.As(err, &de) || !errors.As(wantErr, &wantDE) || de.Reason != wantDE.Reason {
				t.Fatalf("%s: error %v, want encoding/json's path's %v", format, err, wantErr)
			}
			if got != nil {
				t.Fatalf("%s: %d events alongside an error", format, len(got))
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: error %v where encoding/json's path accepts %q", format, err, body)
		}
		if d := diffEvents(got, want); d != "" {
			t.Fatalf("%s: decoded events differ from encoding/json's on %q: %s", format, body, d)
		}
	}
	return fast
}

// fastTakes are bodies the fast path must take: what senders send.
var fastTakes = []struct{ name, format, body string }{
	{"empty array", "postable", `[]`},
	{"empty alert", "postable", `[{}]`},
	{"empty labels", "postable", `[{"labels":{}}]`},
	{"indented", "postable", "[\n  {\n\t\"labels\" : { \"a\" : \"b\" } ,\r\n  \"annotations\":{}\n  }\n]\n"},
	{"escapes", "postable", `[{"labels":{"a":"q\"b\\s\/n\nt\tr\rf\fb\b"},"generatorURL":"http://p/graph?g0.expr=up\u0026g0.tab=1\u003c\u003E"}]`},
	{"escaped label name", "postable", `[{"labels":{"\u0061lert\u006eame":"A"}}]`},
	{"unicode", "postable", `[{"labels":{"alertname":"Überlast","region":"東京","e":"\u00fc\u6771\ud83d\ude00😀"}}]`},
	{"nul escape", "postable", `[{"labels":{"a":"\u0000"}}]`},
	{"times with zones and fractions", "postable", `[{"startsAt":"2026-11-24T23:00:00.123456789+05:30","endsAt":"2026-11-24T23:00:00-00:00"}]`},
	{"zero time", "postable", `[{"endsAt":"0001-01-01T00:00:00Z"}]`},
	{"odd times time.Time takes", "webhook", `{"alerts":[{"status":"resolved","startsAt":"0000-01-01T00:00:00Z","endsAt":"9999-12-31T23:59:59.999999999+24:00"}]}`},
	{"unknown fields of every kind", "postable", `[{"labels":{"a":"b"},"status":{"state":"active","silencedBy":[],"x":[1,-2.5e+3,0.0,true,false,"s\u00e9",{"d":[[{}]]}]},"receivers":["x"]}]`},
	{"unknown field with a key that has escapes", "postable", `[{"x":{"k\u00e9y":1}}]`},
	{"long label values", "postable", `[{"labels":{"a":"` + strings.Repeat("v", 300) + `","` + strings.Repeat("k", 300) + `":"b"}}]`},
	{"webhook, no alerts", "webhook", `{"alerts":[]}`},
	{"webhook, all fields", "webhook", `{"receiver":"r","status":"firing","alerts":[{"status":"resolved","labels":{"a":"b"},"annotations":{"s":"x"},` +
		`"startsAt":"2026-11-24T23:00:00Z","endsAt":"2026-11-24T23:10:00Z","generatorURL":"u","fingerprint":"0123456789abcdef"}],` +
		`"groupLabels":{},"commonLabels":{"a":"b"},"commonAnnotations":{"s":"x"},"externalURL":"e","version":"4","groupKey":"{}:{a=\"b\"}","truncatedAlerts":0}`},
	{"webhook, other status", "webhook", `{"version":"","alerts":[{"status":"pending","endsAt":"2026-11-24T23:10:00Z"},{"status":"firing","endsAt":"2026-11-24T23:10:00Z"}],"truncatedAlerts":1234567890123456789}`},
	{"webhook, unknown fields", "webhook", `{"newField":{"x":[1,2]},"alerts":[{"status":"firing","labels":{"a":"b"},"silencedBy":["x"]}]}`},
	{"webhook, duplicate keys in skipped maps", "webhook", `{"alerts":[],"commonLabels":{"a":"b","a":"c"}}`},
	{"event", "events", `{"labels":{"a":"b"}}`},
	{"events, every field", "events", `[{"source":"s","fingerprint":"f","status":"resolved","severity":"info","labels":{"a":"b"},"annotations":{"c":"d"},` +
		`"starts_at":"2026-11-24T23:00:00Z","ends_at":"2026-11-24T23:30:00Z","time":"2026-11-24T23:31:00Z","generator_url":"http://x"},{"labels":{}}]`},
	{"events, empty source", "events", `[{"source":"","labels":{"a":"b"}}]`},
}

func TestFastPathTakes(t *testing.T) {
	cases := slices.Clone(fastTakes)
	for _, name := range []string{"prometheus-alerts.json", "loadgen-v2.json"} {
		cases = append(cases, struct{ name, format, body string }{name, "postable", string(readFixture(t, name))})
	}
	for _, name := range []string{"alertmanager-webhook.json", "alertmanager-webhook-truncated.json", "loadgen-webhook.json"} {
		cases = append(cases, struct{ name, format, body string }{name, "webhook", string(readFixture(t, name))})
	}
	for _, name := range []string{"events.json", "event.json", "loadgen-events.json"} {
		cases = append(cases, struct{ name, format, body string }{name, "events", string(readFixture(t, name))})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !checkFastMatchesStrict(t, tc.format, []byte(tc.body)) {
				t.Fatalf("the fast path gave up on %q", tc.body)
			}
		})
	}
}

// TestFastPathGivesUp lists what the fast path leaves to encoding/json:
// the public decoders must then give exactly encoding/json's result.
func TestFastPathGivesUp(t *testing.T) {
	cases := []struct{ name, format, body string }{
		// Escapes and Unicode it does not decode itself.
		{"lone high surrogate", "postable", `[{"labels":{"a":"\ud800"}}]`},
		{"lone low surrogate", "postable", `[{"labels":{"a":"\udc00x"}}]`},
		{"reversed surrogates", "postable", `[{"labels":{"a":"\udc00\ud800"}}]`},
		{"high surrogate then a letter escape", "postable", `[{"labels":{"a":"\ud800\u0041"}}]`},
		{"escaped field name", "postable", `[{"lab\u0065ls":{"a":"b"}}]`},
		{"escape in a time", "postable", `[{"startsAt":"2026\u002d11-24T23:00:00Z"}]`},
		{"bad escape", "postable", `[{"labels":{"a":"\x"}}]`},
		{"single-quote escape", "postable", `[{"labels":{"a":"\'"}}]`},
		{"short unicode escape", "postable", `[{"labels":{"a":"\u00"}}]`},
		{"raw control character", "postable", "[{\"labels\":{\"a\":\"x\ty\"}}]"},
		{"invalid UTF-8", "postable", "[{\"labels\":{\"a\":\"\xff\"}}]"},
		{"byte order mark", "postable", "\xef\xbb\xbf[]"},
		{"non-JSON whitespace", "postable", "[\v]"},
		{"no-break space", "postable", "[\u00a0]"},
		// Nulls.
		{"null alert", "postable", `[null]`},
		{"null labels", "postable", `[{"labels":null}]`},
		{"null label value", "postable", `[{"labels":{"a":null}}]`},
		{"null time", "postable", `[{"startsAt":null}]`},
		{"null generatorURL", "postable", `[{"generatorURL":null}]`},
		{"null unknown field", "postable", `[{"x":null}]`},
		{"webhook null alerts", "webhook", `{"alerts":null}`},
		{"webhook null commonLabels", "webhook", `{"alerts":[],"commonLabels":null}`},
		{"event null source", "events", `{"source":null,"labels":{"a":"b"}}`},
		// Keys given twice: encoding/json merges objects and keeps the last value.
		{"labels twice", "postable", `[{"labels":{"a":"b"},"labels":{"c":"d"}}]`},
		{"label twice", "postable", `[{"labels":{"a":"b","a":"c"}}]`},
		{"label twice, once escaped", "postable", `[{"labels":{"a":"b","\u0061":"c"}}]`},
		{"endsAt twice", "postable", `[{"endsAt":"2026-11-24T23:00:00Z","endsAt":"2026-11-24T23:10:00Z"}]`},
		{"webhook alerts twice", "webhook", `{"alerts":[{"labels":{"a":"b"}}],"alerts":[]}`},
		{"webhook status twice", "webhook", `{"alerts":[{"status":"resolved","status":"firing"}]}`},
		{"event labels twice", "events", `{"labels":{"a":"b"},"labels":{"c":"d"}}`},
		// Keys encoding/json matches to a field case-insensitively.
		{"Labels", "postable", `[{"Labels":{"a":"b"}}]`},
		{"ENDSAT", "postable", `[{"ENDSAT":"2026-11-24T23:00:00Z"}]`},
		{"long s", "postable", `[{"labelſ":{"a":"b"}}]`},
		{"non-ASCII unknown key", "postable", `[{"é":1}]`},
		{"webhook Alerts", "webhook", `{"Alerts":[{"LABELS":{"a":"b"}}],"VERSION":"4"}`},
		{"webhook alert Status", "webhook", `{"alerts":[{"Status":"resolved"}]}`},
		{"webhook kelvin", "webhook", `{"alerts":[],"\u212aey":1}`},
		{"event Labels", "events", `{"Labels":{"a":"b"}}`},
		{"event camelCase", "events", `{"labels":{"a":"b"},"startsAt":"2026-11-24T23:00:00Z"}`},
		{"event unknown field", "events", `{"labels":{"a":"b"},"extra":1}`},
		// Numbers and other types where strings are expected.
		{"number label value", "postable", `[{"labels":{"code":503}}]`},
		{"bool annotation", "postable", `[{"annotations":{"s":true}}]`},
		{"number time", "postable", `[{"startsAt":1764028800}]`},
		{"array labels", "postable", `[{"labels":["a","b"]}]`},
		{"alert as number", "postable", `[{"labels":{"a":"b"}}, 7]`},
		{"object body", "postable", `{"labels":{"a":"b"}}`},
		{"webhook version as number", "webhook", `{"version":4,"alerts":[]}`},
		{"truncatedAlerts max uint64", "webhook", `{"truncatedAlerts":18446744073709551615,"alerts":[]}`},
		{"truncatedAlerts over uint64", "webhook", `{"truncatedAlerts":18446744073709551616,"alerts":[]}`},
		{"truncatedAlerts exponent", "webhook", `{"truncatedAlerts":1e3,"alerts":[]}`},
		{"truncatedAlerts fraction", "webhook", `{"truncatedAlerts":1.0,"alerts":[]}`},
		{"truncatedAlerts negative", "webhook", `{"truncatedAlerts":-1,"alerts":[]}`},
		{"truncatedAlerts leading zero", "webhook", `{"truncatedAlerts":01,"alerts":[]}`},
		{"huge number in an unknown field", "webhook", `{"alerts":[{"labels":{"a":"b"},"startsAt":1e400}]}`},
		// Bad times.
		{"time without zone", "postable", `[{"startsAt":"2026-11-24T23:54:38"}]`},
		{"time in words", "postable", `[{"endsAt":"yesterday"}]`},
		{"time month 13", "postable", `[{"endsAt":"2026-13-01T00:00:00Z"}]`},
		{"time with space", "postable", `[{"endsAt":"2026-11-24 23:57:08Z"}]`},
		// Webhook payloads encoding/json's path rejects after decoding.
		{"webhook version 5", "webhook", `{"version":"5","alerts":[]}`},
		{"webhook escaped version", "webhook", `{"version":"\u0034","alerts":[]}`},
		{"webhook without alerts", "webhook", `{"version":"4","status":"firing"}`},
		{"webhook empty object", "webhook", `{}`},
		// Syntax errors and trailing data.
		{"trailing comma in object", "postable", `[{"labels":{"a":"b"},}]`},
		{"trailing comma in array", "postable", `[{"labels":{"a":"b"}},]`},
		{"missing colon", "postable", `[{"labels" {"a":"b"}}]`},
		{"truncated", "postable", `[{"labels":{"a":"b"}}`},
		{"truncated in a string", "postable", `[{"labels":{"a":"b`},
		{"trailing garbage", "postable", `[{"labels":{"a":"b"}}] x`},
		{"trailing bracket", "postable", `[{"labels":{"a":"b"}}]]`},
		{"two values", "postable", `[][]`},
		{"bad literal in an unknown field", "postable", `[{"x":tru}]`},
		{"literal run on", "postable", `[{"x":truex}]`},
		{"bad number in an unknown field", "postable", `[{"x":1.}]`},
		{"number run on", "postable", `[{"x":0x1}]`},
		{"minus alone", "postable", `[{"x":-}]`},
		{"deep unknown field", "postable", `[{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}]`},
		{"very deep unknown field", "postable", `[{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}]`},
		{"webhook trailing object", "webhook", `{"alerts":[{"labels":{"a":"b"}}]} {}`},
		{"events trailing value", "events", `{"labels":{"a":"b"}} {"labels":{}}`},
		// Kafka messages: an event followed by a stray brace is one event
		// to encoding/json's streaming decoder.
		{"kafka event with a stray brace", "kafka", `{"labels":{"a":"b"}}}`},
		{"kafka event with trailing data", "kafka", `{"labels":{"a":"b"}} {"labels":{}}`},
		{"kafka webhook with alerts escaped", "kafka", `{"\u0061lerts":[{"labels":{"a":"b"}}]}`},
		{"kafka event with a case-variant key", "kafka", `{"Labels":{"a":"b"}}`},
		{"kafka array", "kafka", `[{"labels":{"a":"b"}}]`},
	}
	for _, tc := range cases {
		t.Run(tc.format+"/"+tc.name, func(t *testing.T) {
			if checkFastMatchesStrict(t, tc.format, []byte(tc.body)) {
				t.Fatalf("the fast path took %q", tc.body)
			}
		})
	}
}

// TestKafkaFastPath: the Kafka decoder takes the fast path for both of its
// shapes, and gives what encoding/json's path gives.
func TestKafkaFastPath(t *testing.T) {
	for _, body := range []string{
		`{"labels":{"alertname":"A"},"severity":"critical"}`,
		`{"source":"zabbix","labels":{"alertname":"A"}}`,
		string(readFixture(t, "alertmanager-webhook.json")),
		string(readFixture(t, "loadgen-webhook.json")),
		`{"labels":{"a":"b"},"alerts":[]}`,
	} {
		checkFastMatchesStrict(t, "kafka", []byte(body))
		n := testing.AllocsPerRun(10, func() {
			if _, err := ingest.DecodeKafkaAlert([]byte(body)); err != nil {
				t.Fatal(err)
			}
		})
		strict := testing.AllocsPerRun(10, func() {
			if _, err := ingest.Paths["kafka"].Strict([]byte(body)); err != nil {
				t.Fatal(err)
			}
		})
		if n >= strict {
			t.Errorf("%.40s…: %v allocations, encoding/json's path %v: the fast path was not taken", body, n, strict)
		}
	}
}

func FuzzFastPathMatchesStrict(f *testing.F) {
	for _, name := range []string{"alertmanager-webhook.json", "alertmanager-webhook-truncated.json", "prometheus-alerts.json",
		"events.json", "event.json", "loadgen-v2.json", "loadgen-webhook.json", "loadgen-events.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range tricky {
		f.Add([]byte(s))
	}
	for _, tc := range fastTakes {
		f.Add([]byte(tc.body))
	}
	for _, s := range []string{`a\"b\u00e9\ud83d\ude00\/`, `\ud800`, `{"a":[1,-2.5e+3,true,null]}`, `123`, `2026-11-24T23:00:00+01:00`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, format := range formats {
			checkFastMatchesStrict(t, format, body)
		}
		// The input also as a string's content, a key, an unknown field's
		// value and a number, where the fast path reads it itself.
		for _, tpl := range []struct{ format, before, after string }{
			{"postable", `[{"labels":{"k":"`, `"}}]`},
			{"postable", `[{"annotations":{"`, `":"v"}}]`},
			{"postable", `[{"x":`, `}]`},
			{"postable", `[{"startsAt":"`, `"}]`},
			{"webhook", `{"alerts":[],"truncatedAlerts":`, `}`},
			{"events", `{"labels":{"a":"b"},"source":"`, `"}`},
		} {
			checkFastMatchesStrict(t, tpl.format, []byte(tpl.before+string(body)+tpl.after))
		}
	})
}

// TestDecoderInterns: the events of two bodies share the strings of their
// labels, names and short values alike, and annotation names; long values
// are their own.
func TestDecoderInterns(t *testing.T) {
	d := ingest.NewDecoder(ingest.NewInterner(0))
	long := strings.Repeat("x", 65)
	body := []byte(`[{"labels":{"alertname":"A","service":"orders","long":"` + long + `"},"annotations":{"summary":"` + long + `"}}]`)
	first, err := d.PostableAlerts(body)
	if err != nil {
		t.Fatal(err)
	}
	second, err := d.PostableAlerts(slices.Clone(body))
	if err != nil {
		t.Fatal(err)
	}
	key := func(m map[string]string, k string) string {
		for mk := range m {
			if mk == k {
				return mk
			}
		}
		t.Fatalf("no key %q", k)
		return ""
	}
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	l1, l2 := first[0].Labels, second[0].Labels
	if !same(key(l1, "service"), key(l2, "service")) || !same(l1["service"], l2["service"]) {
		t.Error("label names and short values are not shared")
	}
	if !same(key(first[0].Annotations, "summary"), key(second[0].Annotations, "summary")) {
		t.Error("annotation names are not shared")
	}
	if same(l1["long"], l2["long"]) || same(first[0].Annotations["summary"], second[0].Annotations["summary"]) {
		t.Error("a value longer than 64 bytes is shared: long values are mostly unique")
	}
}

// TestDecoderInternerBound: decoding interns the strings of an object all
// at once, and the interner's bound holds there too.
func TestDecoderInternerBound(t *testing.T) {
	const capacity = 100
	in := ingest.NewInterner(capacity)
	d := ingest.NewDecoder(in)
	for i := range 100 {
		body := fmt.Sprintf(`[{"labels":{"alertname":"A%d","pod":"p%d","instance":"i%d"},"annotations":{"k%d":"v"}}]`, i, i, i, i)
		if _, err := d.PostableAlerts([]byte(body)); err != nil {
			t.Fatal(err)
		}
		if n := in.Len(); n > capacity {
			t.Fatalf("after %d bodies the interner holds %d strings, more than its capacity %d", i+1, n, capacity)
		}
	}
}

// TestDecoderConcurrent: one Decoder serves many requests at once.
func TestDecoderConcurrent(t *testing.T) {
	in := ingest.NewInterner(50)
	var wg sync.WaitGroup
	body := readFixture(t, "loadgen-webhook.json")
	d := ingest.NewDecoder(in)
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if _, err := d.Webhook(body); err != nil {
					t.Error(err)
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
