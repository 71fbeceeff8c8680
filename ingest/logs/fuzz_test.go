package logs

import "testing"

func FuzzMine(f *testing.F) {
	for _, s := range []string{"", " ", "a b c", "x=1 y=2", "<*> <NUM>", "()", "blk_-1 10.0.0.1:80 [::1]:9 0x1f 1h2m", "Fri Jun 17 07:07:00 2005", "\xff\xfe =", "a\tb\nc"} {
		f.Add(s, "connection from 10.1.2.3 port 22")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		m1, _ := NewMiner(Options{MaxTemplates: 2, Masks: []Mask{{Name: "W", Regex: `w+`}}})
		m2, _ := NewMiner(Options{MaxTemplates: 2, Masks: []Mask{{Name: "W", Regex: `w+`}}})
		for _, s := range []string{a, b, a, b + a, b} {
			id1, n1 := m1.Add(s)
			id2, n2 := m2.Add(s)
			if id1 != id2 || n1 != n2 {
				t.Fatalf("Add(%q) not deterministic: (%d,%v) vs (%d,%v)", s, id1, n1, id2, n2)
			}
			if _, ok := m1.Template(id1); !ok {
				t.Fatalf("Add(%q) returned id %d with no template", s, id1)
			}
		}
		data, err := m1.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		m3, _ := NewMiner(Options{MaxTemplates: 2, Masks: []Mask{{Name: "W", Regex: `w+`}}})
		if err := m3.UnmarshalBinary(data); err != nil {
			t.Fatal(err)
		}
		if id1, _ := m1.Add(a); func() uint64 { id, _ := m3.Add(a); return id }() != id1 {
			t.Fatal("restored miner maps differently")
		}
		_ = m3.UnmarshalBinary([]byte(a)) // must not panic
	})
}
