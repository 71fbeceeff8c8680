package scenario

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/triage-dev/triage/correlate"
)

var update = flag.Bool("update", false, "rewrite testdata/cascade from Generate(Small())")

const fixture = "testdata/cascade"

// TestFixture keeps testdata/cascade equal to Generate(Small()) (seed 1),
// so that replays and other packages can use it without it drifting from
// the generator. After an intended change of the generator, run
// `go test ./internal/scenario -run Fixture -update` and review the diff.
func TestFixture(t *testing.T) {
	sc := Generate(Small())
	if *update {
		if err := os.MkdirAll(fixture, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := sc.WriteFiles(fixture); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if err := sc.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := correlate.LoadTopology(filepath.Join(fixture, CMDBFile)); err != nil {
		t.Errorf("the daemon's CMDB loader rejects the fixture: %v", err)
	}
	for _, name := range []string{CMDBFile, EventsFile, TruthFile} {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(fixture, name))
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s differs from Generate(Small()): run with -update after an intended change and review the diff",
				fixture, name)
		}
	}
}

// TestReadFilesRoundTrip: what WriteFiles writes, ReadFiles reads back equal.
func TestReadFilesRoundTrip(t *testing.T) {
	sc := Generate(Small())
	dir := t.TempDir()
	if err := sc.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.CMDB, sc.CMDB) {
		t.Error("CMDB differs after a round trip")
	}
	if len(got.Events) != len(sc.Events) {
		t.Fatalf("%d events read back, want %d", len(got.Events), len(sc.Events))
	}
	for i := range got.Events {
		if !reflect.DeepEqual(got.Events[i], sc.Events[i]) {
			t.Fatalf("event %d differs after a round trip:\n got %+v\nwant %+v", i, got.Events[i], sc.Events[i])
		}
	}
	if !reflect.DeepEqual(got.Truth, sc.Truth) || !reflect.DeepEqual(got.Roots, sc.Roots) || !reflect.DeepEqual(got.AlertCI, sc.AlertCI) {
		t.Error("truth differs after a round trip")
	}
}

func TestReadFilesErrors(t *testing.T) {
	sc := Generate(Config{Seed: 1, CIs: 20, Faults: 2})
	for _, tc := range []struct {
		name, file, content, want string
	}{
		{"bad CMDB", CMDBFile, "cis: [{id: a}, {id: a}]\n", "duplicate id"},
		{"unknown CMDB key", CMDBFile, "cis: [{id: a, colour: red}]\n", "colour"},
		{"bad event", EventsFile, "{\"labels\": {\"a\": \"b\"}}\n{\"labels\": 7}\n", "events.jsonl:2"},
		{"bad truth", TruthFile, "{\"alerts\": []}", "truth.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := sc.WriteFiles(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadFiles(dir)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
