package correlate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestReplayGolden feeds recorded event files through the engine on the
// clock of the events and compares the incidents with golden files. Run
// `go test ./correlate -run Golden -update` after an intended change and
// review the diff.
func TestReplayGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/replay/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no replay files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".jsonl")
		t.Run(name, func(t *testing.T) {
			events := readEvents(t, file)
			e := NewEngine(Options{ResolveAfter: 5 * time.Minute, ReopenWindow: 30 * time.Minute},
				NewLabelGrouper([]string{"alertname", "service"}, 10*time.Minute))
			got, err := json.MarshalIndent(Replay(e, events).Incidents(), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(file, ".jsonl") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("incidents differ from %s (run with -update and review the diff):\n%s", golden, lineDiff(string(want), string(got)))
			}
			// Determinism: a second run gives the same bytes.
			e2 := NewEngine(Options{ResolveAfter: 5 * time.Minute, ReopenWindow: 30 * time.Minute},
				NewLabelGrouper([]string{"alertname", "service"}, 10*time.Minute))
			again, _ := json.MarshalIndent(Replay(e2, readEvents(t, file)).Incidents(), "", "  ")
			if !bytes.Equal(append(again, '\n'), got) {
				t.Error("two replays of the same events differ")
			}
		})
	}
}

func readEvents(t *testing.T, file string) []triage.Event {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []triage.Event
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev triage.Event
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("%s:%d: %v", file, line, err)
		}
		if err := ev.Normalize(ev.Time); err != nil {
			t.Fatalf("%s:%d: %v", file, line, err)
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

// lineDiff shows the first differing lines with some context.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n- " + wl + "\n+ " + gl
		}
	}
	return "(no line differs)"
}
