package scenario

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/yamlfile"
)

// Files a scenario is written to.
const (
	CMDBFile   = "cmdb.yaml"
	EventsFile = "events.jsonl"
	TruthFile  = "truth.json"
)

// truthDoc is the content of truth.json.
type truthDoc struct {
	// Alerts maps fingerprints to ground-truth groups.
	Alerts map[string]string `json:"alerts"`
	// Roots maps fault ids to their root CI.
	Roots map[string]string `json:"roots"`
	// AlertCI maps fingerprints to the CI the alert is about.
	AlertCI map[string]string `json:"alert_ci"`
}

// WriteFiles writes the scenario into dir (which must exist) as cmdb.yaml
// (the CMDB file format, one CI or relation per line), events.jsonl (one
// event per line, the replay format) and truth.json. The same scenario
// always gives the same bytes.
func (s *Scenario) WriteFiles(dir string) error {
	cmdb, err := marshalCMDB(s.CMDB)
	if err != nil {
		return fmt.Errorf("writing scenario: %w", err)
	}
	var events bytes.Buffer
	for i := range s.Events {
		line, err := json.Marshal(&s.Events[i])
		if err != nil {
			return fmt.Errorf("writing scenario: event %d: %w", i, err)
		}
		events.Write(line)
		events.WriteByte('\n')
	}
	truth, err := json.MarshalIndent(truthDoc{Alerts: s.Truth, Roots: s.Roots, AlertCI: s.AlertCI}, "", "  ")
	if err != nil {
		return fmt.Errorf("writing scenario: %w", err)
	}
	for name, data := range map[string][]byte{CMDBFile: cmdb, EventsFile: events.Bytes(), TruthFile: append(truth, '\n')} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("writing scenario: %w", err)
		}
	}
	return nil
}

// ReadFiles reads a scenario that WriteFiles wrote into dir.
func ReadFiles(dir string) (*Scenario, error) {
	s := &Scenario{}
	path := filepath.Join(dir, CMDBFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	if _, err := yamlfile.Decode(path, data, &s.CMDB); err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	if _, err := correlate.NewTopology(s.CMDB); err != nil {
		return nil, fmt.Errorf("reading scenario: %s: %w", path, err)
	}

	path = filepath.Join(dir, EventsFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev triage.Event
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			return nil, fmt.Errorf("reading scenario: %s:%d: %w", path, line, err)
		}
		s.Events = append(s.Events, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading scenario: %s: %w", path, err)
	}

	path = filepath.Join(dir, TruthFile)
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	var t truthDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("reading scenario: %s: %w", path, err)
	}
	s.Truth, s.Roots, s.AlertCI = orEmpty(t.Alerts), orEmpty(t.Roots), orEmpty(t.AlertCI)
	return s, nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// marshalCMDB writes doc as YAML with one flow mapping per CI and relation,
// which keeps a file of thousands of CIs readable and diffable.
func marshalCMDB(doc correlate.CMDB) ([]byte, error) {
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	flow := func() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle} }
	put := func(m *yaml.Node, k string, v *yaml.Node) { m.Content = append(m.Content, str(k), v) }
	cis := &yaml.Node{Kind: yaml.SequenceNode}
	for _, ci := range doc.CIs {
		m := flow()
		put(m, "id", str(ci.ID))
		for _, f := range []struct{ k, v string }{{"type", ci.Type}, {"name", ci.Name}, {"service", ci.Service}} {
			if f.v != "" {
				put(m, f.k, str(f.v))
			}
		}
		if len(ci.Aliases) > 0 {
			seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, a := range ci.Aliases {
				seq.Content = append(seq.Content, str(a))
			}
			put(m, "aliases", seq)
		}
		if len(ci.Attributes) > 0 {
			attrs := flow()
			keys := make([]string, 0, len(ci.Attributes))
			for k := range ci.Attributes {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				put(attrs, k, str(ci.Attributes[k]))
			}
			put(m, "attributes", attrs)
		}
		cis.Content = append(cis.Content, m)
	}
	rels := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range doc.Relations {
		m := flow()
		put(m, "from", str(r.From))
		put(m, "to", str(r.To))
		put(m, "type", str(r.Type))
		rels.Content = append(rels.Content, m)
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	put(root, "cis", cis)
	put(root, "relations", rels)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
