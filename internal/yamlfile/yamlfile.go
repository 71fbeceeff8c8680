// Package yamlfile decodes YAML (and JSON, its subset) files strictly and
// reports every problem as file:line: message, for the config, CMDB and rule
// files that SREs write by hand.
package yamlfile

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem at a position of a file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e Error) Error() string {
	switch {
	case e.File == "":
		return e.Msg
	case e.Line == 0:
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Errors is every problem found in a file, one per line when printed.
type Errors []Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Decode parses data as one YAML document into v, rejecting unknown keys
// and a second document, and returns the node tree for LineOf. An empty
// document leaves v as it was.
func Decode(file string, data []byte, v any) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErrors(file, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &root, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) { // EOF: only comments
		errs := yamlErrors(file, err)
		for i := range errs {
			if p := PathAt(&root, errs[i].Line); p != "" && !strings.HasPrefix(errs[i].Msg, "unknown key") {
				errs[i].Msg = p + ": " + errs[i].Msg
			}
		}
		return nil, errs
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlErrors(file, err) // text after the document that is not a document
	default:
		return nil, Errors{{File: file, Line: extra.Line, Msg: "a second YAML document (---): put everything in one"}}
	}
	return &root, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func yamlErrors(file string, err error) Errors {
	var te *yaml.TypeError
	lines := []string{err.Error()}
	if errors.As(err, &te) {
		lines = te.Errors
	}
	var errs Errors
	for _, l := range lines {
		e := Error{File: file, Msg: strings.TrimPrefix(l, "yaml: ")}
		if m := yamlLine.FindStringSubmatch(l); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = cleanMsg(m[2])
		}
		errs = append(errs, e)
	}
	return errs
}

var inType = regexp.MustCompile(` in type [\w.]+`)

func cleanMsg(s string) string {
	s = inType.ReplaceAllString(s, "")
	s = strings.Replace(s, "field ", "unknown key ", 1)
	s = strings.Replace(s, " not found", "", 1)
	return s
}

// LineOf finds the line of a dotted key path ("correlation.group_by.0") in
// a YAML document, or the closest parent's line, or 0.
func LineOf(root *yaml.Node, path string) int {
	if root == nil {
		return 0
	}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(path, ".") {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					next = n.Content[i+1]
					line = n.Content[i].Line
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(part); err == nil && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

// PathAt is the dotted key path of the deepest key on a line, or "".
func PathAt(n *yaml.Node, line int) string {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if sub := PathAt(v, line); sub != "" {
				return k.Value + "." + sub
			}
			if k.Line == line {
				return k.Value
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			if sub := PathAt(v, line); sub != "" {
				return strconv.Itoa(i) + "." + sub
			}
			if v.Line == line {
				return strconv.Itoa(i)
			}
		}
	}
	return ""
}
