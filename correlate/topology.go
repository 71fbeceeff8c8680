package correlate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/internal/yamlfile"
	"go.yaml.in/yaml/v3"
)

// CMDB is the file format of the CMDB (YAML or JSON) and of PUT /api/v1/cmdb.
type CMDB struct {
	CIs       []triage.CI       `json:"cis" yaml:"cis"`
	Relations []triage.Relation `json:"relations" yaml:"relations"`
}

// MaxCMDBBytes bounds a CMDB file or upload. JSON decodes in a few times
// its size; YAML needs about fifty times its size in memory, so YAML is
// bounded lower (MaxCMDBYAMLBytes): larger CMDBs go in JSON.
const (
	MaxCMDBBytes     = 64 << 20
	MaxCMDBYAMLBytes = 16 << 20
)

// Topology is a validated, indexed CMDB: CIs by id, name and alias, and the
// relations between them in both directions. It is immutable once built, so
// a reload builds a new one and swaps it in.
type Topology struct {
	cis  []triage.CI
	keys map[string]ciKey // id, name or alias → CI
	up   [][]edge         // up[i]: what CI i depends on (failures flow from there to i)
	down [][]edge         // down[i]: what depends on CI i
	hash string
	rels int
}

type ciKey struct {
	idx int32
	via string // id, name or alias
}

type edge struct {
	to  int32
	rel uint8
}

var relTypes = []string{triage.RelDependsOn, triage.RelRunsOn, triage.RelConnectedTo, triage.RelMemberOf}

func relIndex(t string) int { return slices.Index(relTypes, t) }

// ParseTopology decodes and validates CMDB data read from file (used in
// messages). Every problem is reported as file:line: message.
func ParseTopology(file string, data []byte) (*Topology, error) {
	return parseTopology(file, data, MaxCMDBYAMLBytes)
}

// parseTopology decodes documents up to yamlLimit bytes as YAML (JSON is
// YAML): strict, case-sensitive, with lines. Larger ones must be JSON and
// are decoded by encoding/json, without lines for validation problems.
func parseTopology(file string, data []byte, yamlLimit int) (*Topology, error) {
	if len(data) > MaxCMDBBytes {
		return nil, yamlfile.Errors{{File: file, Msg: fmt.Sprintf("CMDB of %d bytes: at most %d allowed", len(data), MaxCMDBBytes)}}
	}
	var doc CMDB
	var root *yaml.Node
	switch {
	case len(data) > yamlLimit && looksLikeJSON(data):
		if err := decodeJSONCMDB(file, data, &doc); err != nil {
			return nil, err
		}
	case len(data) > yamlLimit:
		return nil, yamlfile.Errors{{File: file, Msg: fmt.Sprintf("YAML CMDB of %d bytes: at most %d allowed; use JSON (up to %d bytes) for larger ones",
			len(data), yamlLimit, MaxCMDBBytes)}}
	default:
		var err error
		if root, err = yamlfile.Decode(file, data, &doc); err != nil {
			return nil, err
		}
		if yamlfile.LineOf(root, "cis") == 0 {
			return nil, yamlfile.Errors{{File: file, Line: 1, Msg: "cis: required (write cis: [] for an empty CMDB)"}}
		}
	}
	var errs yamlfile.Errors
	add := func(path, format string, args ...any) {
		errs = append(errs, yamlfile.Error{File: file, Line: yamlfile.LineOf(root, path), Msg: path + ": " + fmt.Sprintf(format, args...)})
	}
	t, ferrs := buildTopology(doc)
	for _, fe := range ferrs {
		add(fe.path, "%s", fe.msg)
	}
	if len(errs) > 0 {
		if len(errs) > 50 {
			n := len(errs)
			errs = append(errs[:50], yamlfile.Error{File: file, Msg: fmt.Sprintf("and %d more problems", n-50)})
		}
		return nil, errs
	}
	sum := sha256.Sum256(data)
	t.hash = hex.EncodeToString(sum[:8])
	return t, nil
}

// looksLikeJSON: an object, `{` then `"` or `}`. A YAML flow mapping
// (`{cis: ...}`) does not.
func looksLikeJSON(data []byte) bool {
	t := bytes.TrimSpace(data)
	if len(t) < 2 || t[0] != '{' {
		return false
	}
	t = bytes.TrimSpace(t[1:])
	return len(t) > 0 && (t[0] == '"' || t[0] == '}')
}

// decodeJSONCMDB decodes a large JSON CMDB with unknown fields refused and
// nothing after the object; a missing cis key is an error, so an empty or
// truncated upload cannot wipe the topology. (encoding/json matches keys
// case-insensitively; the YAML path below the size limit does not.)
func decodeJSONCMDB(file string, data []byte, doc *CMDB) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(doc); err != nil {
		return yamlfile.Errors{{File: file, Line: jsonLine(data, err), Msg: err.Error()}}
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		off := len(data) - len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n"))
		return yamlfile.Errors{{File: file, Line: bytes.Count(data[:off], []byte("\n")) + 1, Msg: "unexpected data after the JSON object"}}
	}
	if doc.CIs == nil { // "cis": [] decodes to an empty, non-nil slice
		return yamlfile.Errors{{File: file, Line: 1, Msg: `cis: required (write "cis": [] for an empty CMDB)`}}
	}
	return nil
}

// jsonLine is the line of a JSON decoding error's offset, or 0.
func jsonLine(data []byte, err error) int {
	var off int64
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	default:
		return 0
	}
	return bytes.Count(data[:min(int(off), len(data))], []byte("\n")) + 1
}

// LoadTopology reads a CMDB file.
func LoadTopology(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, yamlfile.Errors{{File: path, Msg: err.Error()}}
	}
	return ParseTopology(path, data)
}

type fieldErr struct{ path, msg string }

// NewTopology validates and indexes a CMDB built in code.
func NewTopology(doc CMDB) (*Topology, error) {
	t, errs := buildTopology(doc)
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.path + ": " + e.msg
		}
		return nil, fmt.Errorf("invalid CMDB: %s", strings.Join(msgs, "; "))
	}
	return t, nil
}

func buildTopology(doc CMDB) (*Topology, []fieldErr) {
	var errs []fieldErr
	add := func(path, format string, args ...any) {
		errs = append(errs, fieldErr{path, fmt.Sprintf(format, args...)})
	}
	t := &Topology{
		cis:  make([]triage.CI, 0, len(doc.CIs)),
		keys: make(map[string]ciKey, len(doc.CIs)*2),
	}
	owner := make(map[string]int, len(doc.CIs)) // key → index in doc.CIs, for messages
	claim := func(i int, key, via, path string) {
		if key == "" {
			return
		}
		if j, ok := owner[key]; ok {
			if j == i {
				return // a CI may repeat its own id as name or alias
			}
			add(path, "%q already names CI %q (cis.%d): a value must name one CI", key, doc.CIs[j].ID, j)
			return
		}
		owner[key] = i
		t.keys[key] = ciKey{idx: int32(i), via: via}
	}
	for i, ci := range doc.CIs {
		p := "cis." + strconv.Itoa(i)
		switch {
		case ci.ID == "":
			add(p+".id", "required")
		case len(ci.ID) > 256 || !utf8.ValidString(ci.ID):
			add(p+".id", "must be UTF-8 of at most 256 bytes")
		}
		if j, ok := owner[ci.ID]; ok && ci.ID != "" && doc.CIs[j].ID == ci.ID {
			add(p+".id", "duplicate id %q (first at cis.%d)", ci.ID, j)
			continue
		}
		claim(i, ci.ID, "id", p+".id")
		claim(i, ci.Name, "name", p+".name")
		for k, a := range ci.Aliases {
			claim(i, a, "alias", p+".aliases."+strconv.Itoa(k))
		}
		t.cis = append(t.cis, ci)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	t.up = make([][]edge, len(t.cis))
	t.down = make([][]edge, len(t.cis))
	for i, r := range doc.Relations {
		p := "relations." + strconv.Itoa(i)
		from, okF := t.index(r.From)
		to, okT := t.index(r.To)
		if !okF {
			add(p+".from", "%q is not the id of a CI", r.From)
		}
		if !okT {
			add(p+".to", "%q is not the id of a CI", r.To)
		}
		rel := relIndex(r.Type)
		if rel < 0 {
			add(p+".type", "%q is not one of %s", r.Type, strings.Join(relTypes, ", "))
		}
		if !okF || !okT || rel < 0 {
			continue
		}
		if from == to {
			add(p, "a CI cannot relate to itself (%q)", r.From)
			continue
		}
		t.up[from] = append(t.up[from], edge{to: to, rel: uint8(rel)})
		t.down[to] = append(t.down[to], edge{to: from, rel: uint8(rel)})
		t.rels++
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

// index finds a CI by its id only.
func (t *Topology) index(id string) (int32, bool) {
	k, ok := t.keys[id]
	if !ok || k.via != "id" {
		return 0, false
	}
	return k.idx, true
}

// Len is the number of CIs.
func (t *Topology) Len() int { return len(t.cis) }

// Relations is the number of relations.
func (t *Topology) Relations() int { return t.rels }

// Hash identifies the source the topology was parsed from (empty when built in code).
func (t *Topology) Hash() string { return t.hash }

// CIs returns every CI in file order. The slice is shared: do not modify it.
func (t *Topology) CIs() []triage.CI { return t.cis }

// CI returns the CI with the given id.
func (t *Topology) CI(id string) (triage.CI, bool) {
	i, ok := t.index(id)
	if !ok {
		return triage.CI{}, false
	}
	return t.cis[i], true
}

// RelationsOf lists a CI's relations: what it depends on, then what depends on it.
func (t *Topology) RelationsOf(id string) []triage.Relation {
	i, ok := t.index(id)
	if !ok {
		return nil
	}
	var out []triage.Relation
	for _, e := range t.up[i] {
		out = append(out, triage.Relation{From: id, To: t.cis[e.to].ID, Type: relTypes[e.rel]})
	}
	for _, e := range t.down[i] {
		out = append(out, triage.Relation{From: t.cis[e.to].ID, To: id, Type: relTypes[e.rel]})
	}
	return out
}

// ciOf returns the CI of a binding, or nil; t may be nil.
func (t *Topology) ciOf(b *triage.Binding) *triage.CI {
	if t == nil || b == nil {
		return nil
	}
	i, ok := t.index(b.CI)
	if !ok {
		return nil
	}
	return &t.cis[i]
}

// Bind names the CI an alert's labels point at: the first label of order
// whose value (for instance, without its port) is a CI's id, name or alias.
func (t *Topology) Bind(labels map[string]string, order []string) *triage.Binding {
	if t == nil {
		return nil
	}
	for _, l := range order {
		v := labels[l]
		if v == "" {
			continue
		}
		k, ok := t.keys[v]
		if !ok && l == "instance" {
			if host, _, err := net.SplitHostPort(v); err == nil {
				k, ok = t.keys[host]
			}
		}
		if ok {
			return &triage.Binding{CI: t.cis[k.idx].ID, Label: l, Value: v, Via: k.via}
		}
	}
	return nil
}
