package logs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestMaskToken(t *testing.T) {
	m, err := NewMiner(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in, want string
		varOnly  bool
	}{
		{"hello", "hello", false},
		{"42", "<NUM>", true},
		{"-3.5,", "<NUM>,", true},
		{"10.0.0.1", "<IP>", true},
		{"(10.0.0.1:8080)", "(<IP>)", true},
		{"[fe80::1]:443", "<IP>", true},
		{"2001:db8:0:0:0:0:2:1", "<IP>", true},
		{"0xdeadbeef", "<HEX>", true},
		{"7fed806eb5d1", "<HEX>", true},
		{"123e4567-e89b-12d3-a456-426614174000", "<UUID>", true},
		{"/var/log/syslog", "<PATH>", true},
		{`C:\Windows\win.ini`, "<PATH>", true},
		{"https://example.com/a?b=1", "<URL>", true},
		{"ops@example.com", "<EMAIL>", true},
		{"10ms", "<DURATION>", true},
		{"1h2m3.5s", "<DURATION>", true},
		{"10KB", "<SIZE>", true},
		{"db-7.example.com:5432", "<IP>", true},
		{"mail.example.org", "<HOST>", true},
		{"12:34:56", "<*>", true},
		{"blk_-1608999687919862906", "blk_<*>", false},
		{"job_1445144423722_0020", "job_<*>", false},
		{"R02-M1-N0-C:J12-U11", "<*>", true},
		{"(uid=0)", "(uid=<NUM>)", false},
		{"rhost=host.example.net", "rhost=<HOST>", false},
		{"node-246", "node-<*>", false},
		{"()", "()", true},
		{"-", "-", false},
		{"org.apache.hadoop.mapreduce.v2.app.MRAppMaster", "org.apache.hadoop.mapreduce.<*>", false},
		{"app.exe", "app.exe", false},
	}
	for _, tc := range tests {
		got := m.maskToken(tc.in)
		if got.text != tc.want || got.varOnly != tc.varOnly {
			t.Errorf("maskToken(%q) = %q varOnly=%v, want %q varOnly=%v", tc.in, got.text, got.varOnly, tc.want, tc.varOnly)
		}
	}
}

func TestMinerGroupsAndGeneralises(t *testing.T) {
	m, err := NewMiner(Options{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []string{
		"Connection from 10.0.0.1 port 22 closed after 1.5s",
		"Connection from 10.0.0.2 port 2222 closed after 30ms",
		"disk /dev/sda1 is 93% full (3 MiB free)",
		"disk /dev/sdb2 is 97% full (12 MiB free)",
		"close, 403 bytes sent, 426 bytes received",
		"close, 1190 bytes (1.16 KB) sent, 426 bytes received",
	}
	var ids []uint64
	for _, s := range msgs {
		id, _ := m.Add(s)
		ids = append(ids, id)
	}
	if ids[0] != ids[1] || ids[2] != ids[3] || ids[4] != ids[5] || ids[0] == ids[2] || ids[2] == ids[4] {
		t.Fatalf("ids %v: want pairs grouped", ids)
	}
	want := map[uint64]string{
		ids[0]: "Connection from <IP> port <NUM> closed after <DURATION>",
		ids[2]: "disk <PATH> is <*> full (<SIZE> free)",
		ids[4]: "close, <NUM> bytes <*> sent, <NUM> bytes received",
	}
	for id, text := range want {
		tpl, ok := m.Template(id)
		if !ok || tpl.Text != text || tpl.Count != 2 || tpl.Size != len(strings.Fields(text)) {
			t.Errorf("template %d = %+v, want text %q count 2", id, tpl, text)
		}
	}
	if m.Len() != 3 || len(m.Templates()) != 3 {
		t.Errorf("Len %d, Templates %d, want 3", m.Len(), len(m.Templates()))
	}
	// A template keeps its id while it generalises.
	a, _ := m.Add("Session alpha initialized by client beta gamma delta for the app of the cluster")
	b, isNew := m.Add("Session alpha initialized by client beta gamma epsilon for the app of the cluster")
	if a != b || isNew {
		t.Errorf("generalised template: ids %d, %d (new %v), want the same", a, b, isNew)
	}
	if tpl, _ := m.Template(a); tpl.Text != "Session alpha initialized by client beta gamma <*> for the app of the cluster" {
		t.Errorf("generalised text %q", tpl.Text)
	}
}

func TestUserMasks(t *testing.T) {
	m, err := NewMiner(Options{Masks: []Mask{{Name: "USER", Regex: `user=\w+`}, {Name: "ORDER", Regex: `ORD[A-Z]+`}}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Add("login user=alice from web for ORDABC")
	b, _ := m.Add("login user=bob from web for ORDXYZ")
	tpl, _ := m.Template(a)
	if a != b || tpl.Text != "login <USER> from web for <ORDER>" {
		t.Errorf("ids %d %d, template %q", a, b, tpl.Text)
	}
	_, err = NewMiner(Options{Masks: []Mask{{Name: "BAD", Regex: `(`}}})
	if err == nil || !strings.Contains(err.Error(), `mask "BAD"`) {
		t.Errorf("bad regex: err %v, want it to name the mask", err)
	}
	if _, err = NewMiner(Options{Masks: []Mask{{Name: "", Regex: `x`}}}); err == nil {
		t.Error("empty mask name: no error")
	}
}

func shape(i int) string {
	// Distinct word-only shapes: digits would be masked away.
	var b strings.Builder
	for ; ; i /= 26 {
		b.WriteByte(byte('a' + i%26))
		if i < 26 {
			break
		}
	}
	w := b.String()
	return fmt.Sprintf("event%s %s happened on node %s with code %d", w, w, w, i)
}

func TestEvictionKeepsRecent(t *testing.T) {
	var evicted int
	m, err := NewMiner(Options{MaxTemplates: 100, OnEvict: func(Template) { evicted++ }})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uint64, 1000)
	for i := range ids {
		ids[i], _ = m.Add(shape(i))
		if m.Len() > 100 {
			t.Fatalf("after %d messages Len %d > 100", i+1, m.Len())
		}
	}
	if evicted != 900 {
		t.Errorf("evicted %d, want 900", evicted)
	}
	for i := 900; i < 1000; i++ {
		if _, ok := m.Template(ids[i]); !ok {
			t.Errorf("recent template %d (message %d) evicted", ids[i], i)
		}
	}
	if _, ok := m.Template(ids[0]); ok {
		t.Error("oldest template kept")
	}
	// Using an old template keeps it: touch 950, add one new, 901 goes.
	m.Add(shape(950))
	m.Add(shape(5000))
	if _, ok := m.Template(ids[950]); !ok {
		t.Error("recently used template evicted")
	}
	if _, ok := m.Template(ids[900]); ok {
		t.Error("least recently used template kept")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	opts := Options{MaxTemplates: 500}
	a, err := NewMiner(opts)
	if err != nil {
		t.Fatal(err)
	}
	var corpus []string
	for _, sys := range loghubSystems {
		for _, l := range readLoghub(t, sys) {
			corpus = append(corpus, l.content)
		}
	}
	half := len(corpus) / 2
	for _, s := range corpus[:half] {
		a.Add(s)
	}
	data, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMiner(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a.Templates()) != fmt.Sprint(b.Templates()) {
		t.Fatal("restored templates differ")
	}
	for i, s := range corpus[half:] {
		ida, na := a.Add(s)
		idb, nb := b.Add(s)
		if ida != idb || na != nb {
			t.Fatalf("message %d %q: original (%d, %v), restored (%d, %v)", half+i, s, ida, na, idb, nb)
		}
	}
	if fmt.Sprint(a.Templates()) != fmt.Sprint(b.Templates()) {
		t.Fatal("templates differ after the same messages")
	}
	// Corrupt and truncated state is refused, leaving the miner as it was.
	for _, bad := range [][]byte{nil, []byte("TLM\x09"), data[:len(data)/2], append(append([]byte{}, data...), 0)} {
		if err := b.UnmarshalBinary(bad); !errors.Is(err, ErrBadState) {
			t.Errorf("UnmarshalBinary(%d bytes) = %v, want ErrBadState", len(bad), err)
		}
	}
	if b.Len() != a.Len() {
		t.Errorf("Len after failed restore %d, want %d", b.Len(), a.Len())
	}
}

func TestAddDeterministic(t *testing.T) {
	lines := readLoghub(t, "Linux")
	var first []uint64
	for run := 0; run < 2; run++ {
		m, _ := NewMiner(Options{})
		var ids []uint64
		for _, l := range lines {
			id, _ := m.Add(l.content)
			ids = append(ids, id)
		}
		if run == 0 {
			first = ids
		} else if fmt.Sprint(ids) != fmt.Sprint(first) {
			t.Fatal("two runs over the same messages gave different ids")
		}
	}
}
