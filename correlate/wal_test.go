package correlate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func testRecord(i int) *Record {
	return &Record{Ops: []Op{
		{Bucket: bIncidents, Key: u64(uint64(i)), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))},
		{Bucket: bLive, Key: u64(uint64(i))},
		{Delete: true, Bucket: bLive, Key: u64(uint64(i + 1000))},
	}}
}

func openWAL(t *testing.T, dir string, after uint64, seg int64) (*WAL, []*Record) {
	t.Helper()
	var got []*Record
	w, err := OpenWAL(dir, after, seg, func(r *Record) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return w, got
}

func appendN(t *testing.T, w *WAL, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := w.AppendAll([]*Record{testRecord(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func TestWALReplaysWhatTheStoreLacks(t *testing.T) {
	dir := t.TempDir()
	w, got := openWAL(t, dir, 0, 300)
	if len(got) != 0 {
		t.Fatalf("a new log replayed %d records", len(got))
	}
	appendN(t, w, 1, 20)
	w.Close()
	if n := len(segments(t, dir)); n < 3 {
		t.Fatalf("%d segments; want rotation", n)
	}
	w, got = openWAL(t, dir, 12, 300)
	defer w.Close()
	if len(got) != 8 || got[0].LSN != 13 || got[7].LSN != 20 {
		t.Fatalf("replayed %d records from LSN %d, want 8 from 13", len(got), got[0].LSN)
	}
	want := testRecord(13)
	if !slices.EqualFunc(got[0].Ops, want.Ops, func(a, b Op) bool {
		return a.Delete == b.Delete && a.Bucket == b.Bucket && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value)
	}) {
		t.Fatalf("record 13 = %+v, want %+v", got[0].Ops, want.Ops)
	}
	r := testRecord(21)
	if err := w.AppendAll([]*Record{r}); err != nil || r.LSN != 21 {
		t.Fatalf("next append got LSN %d (%v), want 21", r.LSN, err)
	}
}

func TestWALCutsATornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(path string) error
	}{
		{"half a record", func(p string) error {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, fi.Size()-5)
		}},
		{"garbage after the last record", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte{9, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7})
			return err
		}},
		{"a flipped bit in the last record", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)-3] ^= 0x10
			return os.WriteFile(p, b, 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, _ := openWAL(t, dir, 0, 1<<20)
			appendN(t, w, 1, 5)
			w.Close()
			segs := segments(t, dir)
			if err := tc.tear(segs[len(segs)-1]); err != nil {
				t.Fatal(err)
			}
			w, got := openWAL(t, dir, 0, 1<<20)
			wantN := 4
			if tc.name == "garbage after the last record" {
				wantN = 5
			}
			if len(got) != wantN {
				t.Fatalf("replayed %d records, want %d intact ones", len(got), wantN)
			}
			appendN(t, w, 10, 2)
			w.Close()
			_, got = openWAL(t, dir, 0, 1<<20)
			if len(got) != wantN+2 || got[len(got)-1].LSN != uint64(wantN+2) {
				t.Fatalf("after the cut and two appends: %d records, last LSN %d", len(got), got[len(got)-1].LSN)
			}
		})
	}
}

func TestWALRefusesADamagedOlderSegment(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir, 0, 200)
	appendN(t, w, 1, 10)
	w.Close()
	segs := segments(t, dir)
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[10] ^= 0xff
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenWAL(dir, 0, 200, func(*Record) error { return nil })
	if !errors.Is(err, ErrWALCorrupt) {
		t.Fatalf("open with a damaged older segment: %v, want ErrWALCorrupt", err)
	}
}

func TestWALRelease(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir, 0, 200)
	defer w.Close()
	appendN(t, w, 1, 12)
	before := len(segments(t, dir))
	if err := w.Release(12); err != nil {
		t.Fatal(err)
	}
	if n := len(segments(t, dir)); n != 1 || w.Segments() != 1 || before < 3 {
		t.Fatalf("segments %d → %d (%d tracked), want all but the open one released", before, n, w.Segments())
	}
	appendN(t, w, 13, 1)
	w.Close()
	_, got := openWAL(t, dir, 12, 200)
	if len(got) != 1 || got[0].LSN != 13 {
		t.Fatalf("after release: %d records", len(got))
	}
}

func TestWALOlderThanTheStoreStartsAfresh(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir, 0, 1<<20)
	appendN(t, w, 1, 3)
	w.Close()
	w, got := openWAL(t, dir, 10, 1<<20) // the store is at 10
	if len(got) != 0 {
		t.Fatalf("replayed %d records the store already has", len(got))
	}
	appendN(t, w, 11, 1)
	w.Close()
	_, got = openWAL(t, dir, 10, 1<<20)
	if len(got) != 1 || got[0].LSN != 11 {
		t.Fatalf("got %d records, first LSN %v", len(got), got)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(&Record{LSN: 7, Ops: testRecord(7).Ops}))
	f.Add([]byte{})
	f.Add([]byte{1, 200, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(encodeRecord(r))
		if err != nil || again.LSN != r.LSN || len(again.Ops) != len(r.Ops) {
			t.Fatalf("round trip of a decoded record failed: %v", err)
		}
	})
}
