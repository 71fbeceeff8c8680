package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `target,offered_eps,achieved_eps,p50_ms,p99_ms,errors,late
triage,5000,4990,1.5,9,0,0
triage,1000,1000,1.2,3.5,0,0
alertmanager,1000,1000,0.9,2.5,0,0
`

func TestReadSweep(t *testing.T) {
	got, err := readSweep(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].name != "triage" || got[1].name != "alertmanager" {
		t.Fatalf("targets: %+v", got)
	}
	if p := got[0].points; len(p) != 2 || p[0].offered != 1000 || p[1].p99 != 9 {
		t.Fatalf("triage points not sorted by offered load: %+v", p)
	}
	for name, in := range map[string]string{
		"empty":     "",
		"no column": "target,offered_eps\ntriage,1\n",
		"bad value": "target,offered_eps,achieved_eps,p99_ms\ntriage,x,1,1\n",
	} {
		if _, err := readSweep(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRunWritesPNG(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "sweep.csv"), filepath.Join(dir, "plot.png")
	if err := os.WriteFile(in, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(in, out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Fatalf("size %v", b)
	}
}

func TestShort(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.1: "0.1", 50: "50", 2500: "2.5k", 15000: "15k", 1e6: "1m"} {
		if got := short(v); got != want {
			t.Errorf("short(%v) = %q, want %q", v, got, want)
		}
	}
}
