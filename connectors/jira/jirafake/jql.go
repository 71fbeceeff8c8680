package jirafake

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The JQL subset: clauses "field op value" with = != ~ !~ > >= < <= IN (..) NOT IN (..) IS [NOT]
// EMPTY|NULL, combined with AND (&&, &), OR (||, |), NOT (!) and parentheses, then
// ORDER BY field [ASC|DESC], ... Fields are names, quoted custom field names, cf[10050] and
// issue.property[key].path. Values are unquoted words, "double" or 'single' quoted strings, or
// the functions currentUser() and now().

type tokKind int

const (
	tEOF tokKind = iota
	tWord
	tString
	tOp
	tLParen
	tRParen
	tComma
	tLBrack
	tRBrack
)

type token struct {
	kind      tokKind
	text      string
	line, col int
}

func (t token) String() string {
	if t.kind == tEOF {
		return "the end of the query"
	}
	return "'" + t.text + "'"
}

// jqlError is an invalid query, worded like Jira.
type jqlError struct{ messages []string }

func (e *jqlError) Error() string { return strings.Join(e.messages, " ") }

func syntaxErr(t token, format string, args ...any) *jqlError {
	msg := "Error in the JQL Query: " + fmt.Sprintf(format, args...)
	if t.kind != tEOF {
		msg += fmt.Sprintf(" (line %d, character %d)", t.line, t.col)
	}
	return &jqlError{messages: []string{msg}}
}

// wordBreak are the characters that end an unquoted word.
const wordBreak = "\"'()[],=!~<>&|"

func lexJQL(src string) ([]token, *jqlError) {
	var toks []token
	line, col := 1, 1
	i := 0
	advance := func(n int) {
		for _, r := range src[i : i+n] {
			if r == '\n' {
				line++
				col = 1
			} else {
				col++
			}
		}
		i += n
	}
	for i < len(src) {
		c := src[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			advance(1)
			continue
		}
		start := token{line: line, col: col}
		switch {
		case c == '(' || c == ')' || c == ',' || c == '[' || c == ']':
			start.kind = map[byte]tokKind{'(': tLParen, ')': tRParen, ',': tComma, '[': tLBrack, ']': tRBrack}[c]
			start.text = string(c)
			advance(1)
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(src) {
				if src[j] == c {
					closed = true
					break
				}
				if src[j] == '\\' && j+1 < len(src) {
					switch e := src[j+1]; e {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					default:
						b.WriteByte(e)
					}
					j += 2
					continue
				}
				b.WriteByte(src[j])
				j++
			}
			if !closed {
				start.kind = tString
				return nil, syntaxErr(start, "The quoted string '%s' has not been completed.", src[i+1:])
			}
			start.kind, start.text = tString, b.String()
			advance(j + 1 - i)
		case strings.HasPrefix(src[i:], "!=") || strings.HasPrefix(src[i:], "!~") ||
			strings.HasPrefix(src[i:], ">=") || strings.HasPrefix(src[i:], "<=") ||
			strings.HasPrefix(src[i:], "&&") || strings.HasPrefix(src[i:], "||"):
			start.kind, start.text = tOp, src[i:i+2]
			advance(2)
		case strings.IndexByte("=~<>!&|", c) >= 0:
			start.kind, start.text = tOp, string(c)
			advance(1)
		default:
			j := i
			for j < len(src) {
				r, size := utf8.DecodeRuneInString(src[j:])
				if r == ' ' || r == '\t' || r == '\n' || r == '\r' || (r < utf8.RuneSelf && strings.IndexByte(wordBreak, byte(r)) >= 0) {
					break
				}
				j += size
			}
			start.kind, start.text = tWord, src[i:j]
			advance(j - i)
		}
		toks = append(toks, start)
	}
	toks = append(toks, token{kind: tEOF, line: line, col: col})
	return toks, nil
}

// reserved words cannot be unquoted values or field names.
var reservedWords = map[string]bool{"and": true, "or": true, "not": true, "in": true, "is": true, "empty": true, "null": true, "order": true, "by": true, "asc": true, "desc": true, "was": true, "changed": true}

// ---- AST ----

type jqlExpr interface{}

type andExpr struct{ l, r jqlExpr }
type orExpr struct{ l, r jqlExpr }
type notExpr struct{ e jqlExpr }

type jqlValue struct {
	text   string
	empty  bool   // EMPTY or NULL
	fn     string // function name, lower case
	tok    token
	quoted bool
}

type jqlClause struct {
	field    string // as written
	fieldTok token
	propKey  string
	propPath string
	isProp   bool
	cfID     string // for cf[N]: customfield_N
	op       string // = != ~ !~ > >= < <= in "not in" is "is not"
	values   []jqlValue
	list     bool
	resolved *resolvedClause
}

type sortKey struct {
	field string
	tok   token
	desc  bool
	cfID  string
}

type jqlQuery struct {
	where jqlExpr // nil when unbounded
	order []sortKey
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[min(p.i, len(p.toks)-1)] }
func (p *parser) next() token {
	t := p.peek()
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

func isWord(t token, w string) bool { return t.kind == tWord && strings.EqualFold(t.text, w) }

func parseJQL(src string) (*jqlQuery, *jqlError) {
	toks, err := lexJQL(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	q := &jqlQuery{}
	if t := p.peek(); t.kind != tEOF && !isWord(t, "order") {
		e, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		q.where = e
	}
	if isWord(p.peek(), "order") {
		p.next()
		if t := p.next(); !isWord(t, "by") {
			return nil, syntaxErr(t, "Expecting 'BY' but got %s.", t)
		}
		for {
			t := p.next()
			if t.kind != tWord && t.kind != tString {
				return nil, syntaxErr(t, "Expecting a field name but got %s.", t)
			}
			k := sortKey{field: t.text, tok: t}
			if t.kind == tWord && strings.EqualFold(t.text, "cf") && p.peek().kind == tLBrack {
				id, err := p.parseCF(t)
				if err != nil {
					return nil, err
				}
				k.cfID, k.field = id, "cf["+strings.TrimPrefix(id, "customfield_")+"]"
			}
			if isWord(p.peek(), "asc") {
				p.next()
			} else if isWord(p.peek(), "desc") {
				p.next()
				k.desc = true
			}
			q.order = append(q.order, k)
			if p.peek().kind != tComma {
				break
			}
			p.next()
		}
	}
	if t := p.peek(); t.kind != tEOF {
		if q.where != nil && len(q.order) == 0 {
			return nil, syntaxErr(t, "Expecting either 'OR' or 'AND' but got %s.", t)
		}
		return nil, syntaxErr(t, "Expecting ',' or the end of the query but got %s.", t)
	}
	return q, nil
}

func (p *parser) parseOr() (jqlExpr, *jqlError) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if !isWord(t, "or") && !(t.kind == tOp && (t.text == "||" || t.text == "|")) {
			return l, nil
		}
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &orExpr{l, r}
	}
}

func (p *parser) parseAnd() (jqlExpr, *jqlError) {
	l, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if !isWord(t, "and") && !(t.kind == tOp && (t.text == "&&" || t.text == "&")) {
			return l, nil
		}
		p.next()
		r, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		l = &andExpr{l, r}
	}
}

func (p *parser) parseNot() (jqlExpr, *jqlError) {
	t := p.peek()
	if isWord(t, "not") || (t.kind == tOp && t.text == "!") {
		p.next()
		e, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &notExpr{e}, nil
	}
	if t.kind == tLParen {
		p.next()
		e, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			if c.kind == tEOF {
				return nil, syntaxErr(c, "Expecting ')' before the end of the query.")
			}
			return nil, syntaxErr(c, "Expecting ')' but got %s.", c)
		}
		return e, nil
	}
	return p.parseClause()
}

// parseCF reads "[10050]" after "cf".
func (p *parser) parseCF(cf token) (string, *jqlError) {
	p.next() // [
	n := p.next()
	if n.kind != tWord || strings.Trim(n.text, "0123456789") != "" || n.text == "" {
		return "", syntaxErr(n, "Expecting a custom field id but got %s.", n)
	}
	if c := p.next(); c.kind != tRBrack {
		return "", syntaxErr(c, "Expecting ']' but got %s.", c)
	}
	return "customfield_" + n.text, nil
}

const validOperators = "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'."

func (p *parser) parseClause() (jqlExpr, *jqlError) {
	t := p.next()
	switch {
	case t.kind == tEOF:
		return nil, syntaxErr(t, "Expecting a field name before the end of the query.")
	case t.kind == tWord && reservedWords[strings.ToLower(t.text)]:
		return nil, syntaxErr(t, "Expecting a field name but got %s. You must surround %s in quotation marks to use it as a field name.", t, t)
	case t.kind != tWord && t.kind != tString:
		return nil, syntaxErr(t, "Expecting a field name but got %s.", t)
	}
	c := &jqlClause{field: t.text, fieldTok: t}
	if t.kind == tWord && strings.EqualFold(t.text, "cf") && p.peek().kind == tLBrack {
		id, err := p.parseCF(t)
		if err != nil {
			return nil, err
		}
		c.cfID, c.field = id, "cf["+strings.TrimPrefix(id, "customfield_")+"]"
	} else if t.kind == tWord && strings.EqualFold(t.text, "issue.property") && p.peek().kind == tLBrack {
		p.next()
		k := p.next()
		if k.kind != tWord && k.kind != tString {
			return nil, syntaxErr(k, "Expecting a property key but got %s.", k)
		}
		if b := p.next(); b.kind != tRBrack {
			return nil, syntaxErr(b, "Expecting ']' but got %s.", b)
		}
		c.isProp, c.propKey = true, k.text
		if n := p.peek(); n.kind == tWord && strings.HasPrefix(n.text, ".") {
			p.next()
			c.propPath = strings.TrimPrefix(n.text, ".")
		}
		c.field = "issue.property[" + c.propKey + "]"
		if c.propPath != "" {
			c.field += "." + c.propPath
		}
	}
	op := p.next()
	switch {
	case op.kind == tOp && strings.Contains("= != ~ !~ > >= < <=", op.text) && op.text != "!" && op.text != "&" && op.text != "|" && op.text != "&&" && op.text != "||":
		c.op = op.text
	case isWord(op, "in"):
		c.op = "in"
	case isWord(op, "is"):
		c.op = "is"
		if isWord(p.peek(), "not") {
			p.next()
			c.op = "is not"
		}
	case isWord(op, "not") && isWord(p.peek(), "in"):
		p.next()
		c.op = "not in"
	case op.kind == tEOF:
		return nil, syntaxErr(op, "Expecting operator before the end of the query. "+validOperators)
	default:
		return nil, syntaxErr(op, "Expecting operator but got %s. "+validOperators, op)
	}
	switch c.op {
	case "is", "is not":
		v := p.next()
		if !isWord(v, "empty") && !isWord(v, "null") {
			return nil, syntaxErr(v, "Expecting 'EMPTY' or 'NULL' but got %s.", v)
		}
		c.values = []jqlValue{{empty: true, tok: v}}
	case "in", "not in":
		if o := p.peek(); o.kind != tLParen {
			// A single function may stand for the list: assignee in currentUser()... but a bare
			// value is an error, as on Jira.
			if o.kind == tWord && p.toks[min(p.i+1, len(p.toks)-1)].kind == tLParen {
				v, err := p.parseValue()
				if err != nil {
					return nil, err
				}
				c.values = []jqlValue{v}
				break
			}
			return nil, syntaxErr(o, "Expecting '(' but got %s.", o)
		}
		p.next()
		c.list = true
		for {
			v, err := p.parseValue()
			if err != nil {
				return nil, err
			}
			c.values = append(c.values, v)
			s := p.next()
			if s.kind == tRParen {
				break
			}
			if s.kind != tComma {
				if s.kind == tEOF {
					return nil, syntaxErr(s, "Expecting ')' before the end of the query.")
				}
				return nil, syntaxErr(s, "Expecting ',' or ')' but got %s.", s)
			}
		}
	default:
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		c.values = []jqlValue{v}
	}
	return c, nil
}

func (p *parser) parseValue() (jqlValue, *jqlError) {
	t := p.next()
	switch {
	case t.kind == tString:
		return jqlValue{text: t.text, tok: t, quoted: true}, nil
	case t.kind == tWord && (strings.EqualFold(t.text, "empty") || strings.EqualFold(t.text, "null")):
		return jqlValue{empty: true, tok: t}, nil
	case t.kind == tWord && reservedWords[strings.ToLower(t.text)]:
		return jqlValue{}, syntaxErr(t, "Expecting either a value, list or function but got %s. You must surround %s in quotation marks to use it as a value.", t, t)
	case t.kind == tWord:
		if p.peek().kind == tLParen {
			p.next()
			// Arguments are accepted and ignored: the supported functions take none.
			for {
				a := p.next()
				if a.kind == tRParen {
					break
				}
				if a.kind == tEOF {
					return jqlValue{}, syntaxErr(a, "Expecting ')' before the end of the query.")
				}
			}
			return jqlValue{fn: strings.ToLower(t.text), text: t.text + "()", tok: t}, nil
		}
		return jqlValue{text: t.text, tok: t}, nil
	case t.kind == tEOF:
		return jqlValue{}, syntaxErr(t, "Expecting either a value, list or function before the end of the query.")
	default:
		return jqlValue{}, syntaxErr(t, "Expecting either a value, list or function but got %s.", t)
	}
}
