package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// locate re-reads a well-formed body along the Go type t that it failed to
// decode into, and returns the first value that does not fit, named by its
// JSON path (alerts[2].labels.service). encoding/json alone names neither
// array indexes nor the field of a bad time, which a sender needs to fix
// its payload. It returns nil when it finds nothing to blame.
//
// It follows encoding/json's rules: keys match field names exactly or else
// case-insensitively, null fits anything, and unknown keys are errors only
// when strict.
func locate(body []byte, t reflect.Type, strict bool, root string) *DecodeError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	l := &locator{dec: dec, strict: strict, fields: map[reflect.Type][]jsonField{}}
	return l.value(t, root)
}

type locator struct {
	dec    *json.Decoder
	strict bool
	broken bool // the body stopped making sense: give up quietly
	fields map[reflect.Type][]jsonField
}

// jsonField is a struct field as encoding/json names it.
type jsonField struct {
	name string
	typ  reflect.Type
}

var timeType = reflect.TypeFor[time.Time]()

func (l *locator) value(t reflect.Type, path string) *DecodeError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := l.dec.Token()
	if err != nil {
		l.broken = true
		return nil
	}
	if tok == nil {
		return nil
	}
	if t == timeType {
		s, ok := tok.(string)
		if !ok {
			return mismatch(path, t, tok)
		}
		var tm time.Time
		q, _ := json.Marshal(s)
		if tm.UnmarshalJSON(q) != nil {
			return &DecodeError{Reason: "type", Msg: fmt.Sprintf("%s: %q is not an RFC 3339 time, e.g. 2026-01-02T15:04:05Z", name(path), clip(s))}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return mismatch(path, t, tok)
		}
		for l.dec.More() && !l.broken {
			key, err := l.key()
			if err != nil {
				return nil
			}
			ft, ok := l.fieldOf(t, key)
			if !ok {
				if l.strict {
					return &DecodeError{Reason: "unknown_field", Msg: fmt.Sprintf("%s: unknown field %q", name(path), clip(key))}
				}
				l.skip()
				continue
			}
			if de := l.value(ft, join(path, key)); de != nil {
				return de
			}
		}
		l.end()
		return nil
	case reflect.Map:
		if tok != json.Delim('{') {
			return mismatch(path, t, tok)
		}
		for l.dec.More() && !l.broken {
			key, err := l.key()
			if err != nil {
				return nil
			}
			if de := l.value(t.Elem(), join(path, key)); de != nil {
				return de
			}
		}
		l.end()
		return nil
	case reflect.Slice, reflect.Array:
		if tok != json.Delim('[') {
			return mismatch(path, t, tok)
		}
		for i := 0; l.dec.More() && !l.broken; i++ {
			if de := l.value(t.Elem(), path+"["+strconv.Itoa(i)+"]"); de != nil {
				return de
			}
		}
		l.end()
		return nil
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return mismatch(path, t, tok)
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return mismatch(path, t, tok)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); !ok || err != nil {
			return mismatch(path, t, tok)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := tok.(json.Number)
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); !ok || err != nil {
			return mismatch(path, t, tok)
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := tok.(json.Number); !ok {
			return mismatch(path, t, tok)
		}
	default: // interfaces and the like take anything
		l.skipRest(tok)
	}
	return nil
}

// end reads the closing delimiter of an object or array.
func (l *locator) end() {
	if !l.broken {
		if _, err := l.dec.Token(); err != nil {
			l.broken = true
		}
	}
}

// key reads an object key.
func (l *locator) key() (string, error) {
	tok, err := l.dec.Token()
	if err != nil {
		l.broken = true
		return "", err
	}
	k, ok := tok.(string)
	if !ok {
		l.broken = true
		return "", fmt.Errorf("object key is %T", tok)
	}
	return k, nil
}

// skip reads and drops one value.
func (l *locator) skip() {
	var raw json.RawMessage
	if l.dec.Decode(&raw) != nil {
		l.broken = true
	}
}

// skipRest drops the rest of a value whose first token was tok.
func (l *locator) skipRest(tok json.Token) {
	depth := 0
	for {
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth <= 0 {
			return
		}
		var err error
		if tok, err = l.dec.Token(); err != nil {
			l.broken = true
			return
		}
	}
}

// fieldOf finds the type of the struct field that encoding/json decodes key into.
func (l *locator) fieldOf(t reflect.Type, key string) (reflect.Type, bool) {
	fields, ok := l.fields[t]
	if !ok {
		for _, f := range reflect.VisibleFields(t) {
			tag := f.Tag.Get("json")
			if !f.IsExported() || tag == "-" {
				continue
			}
			n, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && n == "" && f.Type.Kind() == reflect.Struct {
				continue // its fields are promoted
			}
			if n == "" {
				n = f.Name
			}
			fields = append(fields, jsonField{n, f.Type})
		}
		l.fields[t] = fields
	}
	for _, f := range fields {
		if f.name == key {
			return f.typ, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, key) {
			return f.typ, true
		}
	}
	return nil, false
}

func mismatch(path string, t reflect.Type, tok json.Token) *DecodeError {
	return &DecodeError{Reason: "type", Msg: fmt.Sprintf("%s: expected %s, got JSON %s", name(path), want(t), got(tok))}
}

func want(t reflect.Type) string {
	if t == timeType {
		return "an RFC 3339 time string"
	}
	switch t.Kind() {
	case reflect.Struct:
		return "an object"
	case reflect.Map:
		if t.Elem().Kind() == reflect.String {
			return "an object of strings"
		}
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

func got(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case json.Number:
		return "number " + clip(string(v))
	case bool:
		return "boolean"
	}
	return "value"
}

func join(path, key string) string {
	if path == "" {
		return clip(key)
	}
	return path + "." + clip(key)
}

// clip shortens what a sender sent to a length fit for a message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// name is how a message names the value at path.
func name(path string) string {
	if path == "" {
		return "body"
	}
	return path
}
