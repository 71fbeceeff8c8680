package main

import (
	"bufio"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/triage-dev/triage/ingest/logs"
)

// maxLogLine is the longest message `triage logs mine` reads.
const maxLogLine = 1 << 20

func logsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "mine" {
		fmt.Fprintln(stderr, "usage: triage logs mine [--output templates|lines] [--mask NAME=REGEX]... [--max-templates N] FILE")
		return 2
	}
	return logsMine(args[1:], stdout, stderr)
}

func logsMine(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logs mine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("output", "templates", "templates (one line per template, by count) or lines (the template of each input line)")
	maxTemplates := fs.Int("max-templates", logs.DefaultMaxTemplates, "templates kept; the least recently used are evicted beyond it")
	var masks stringList
	fs.Var(&masks, "mask", "NAME=REGEX: replace matches by <NAME> before mining (repeatable, applied in order)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: triage logs mine [--output templates|lines] [--mask NAME=REGEX]... [--max-templates N] FILE")
		fmt.Fprintln(stderr, "Reads one message per line from FILE (- for standard input).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || (*output != "templates" && *output != "lines") || *maxTemplates <= 0 {
		fs.Usage()
		return 2
	}
	opts := logs.Options{MaxTemplates: *maxTemplates}
	for _, m := range masks {
		name, re, ok := strings.Cut(m, "=")
		if !ok || name == "" {
			fmt.Fprintf(stderr, "--mask %q: want NAME=REGEX\n", m)
			return 2
		}
		opts.Masks = append(opts.Masks, logs.Mask{Name: name, Regex: re})
	}
	// Lines whose template is evicted before the end still print its last text.
	evicted := map[uint64]string{}
	lines := *output == "lines"
	if lines {
		opts.OnEvict = func(t logs.Template) { evicted[t.ID] = t.Text }
	}
	miner, err := logs.NewMiner(opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}

	name := fs.Arg(0)
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer f.Close()
		in = f
	} else {
		name = "stdin"
	}
	var ids []uint64
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), maxLogLine)
	n := 0
	for sc.Scan() {
		n++
		id, _ := miner.Add(strings.TrimSuffix(sc.Text(), "\r"))
		if lines {
			ids = append(ids, id)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line longer than %d bytes", maxLogLine)
		}
		fmt.Fprintf(stderr, "%s:%d: %v\n", name, n+1, err)
		return 1
	}

	w := bufio.NewWriter(stdout)
	defer w.Flush()
	if lines {
		text := map[uint64]string{}
		for _, id := range ids {
			t, ok := text[id]
			if !ok {
				if tpl, found := miner.Template(id); found {
					t = tpl.Text
				} else {
					t = evicted[id]
				}
				text[id] = t
			}
			fmt.Fprintf(w, "%d\t%s\n", id, t)
		}
		return 0
	}
	tpls := miner.Templates()
	slices.SortStableFunc(tpls, func(a, b logs.Template) int { return cmp.Compare(b.Count, a.Count) })
	for _, t := range tpls {
		fmt.Fprintf(w, "%d\t%d\t%s\n", t.ID, t.Count, t.Text)
	}
	return 0
}
