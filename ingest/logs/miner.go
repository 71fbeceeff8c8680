// Package logs turns free-text log messages into templates: the constant
// part of a message with its variable parts (numbers, addresses, ids, paths,
// user-defined patterns) replaced by placeholders. Mining is online: each
// message is assigned a template as it arrives, and a template generalises
// (a constant that varies becomes <*>) as more messages join it, keeping its
// id. The algorithm is a variant of Drain (He et al., ICWS 2017): messages
// are masked token by token, reduced to their constant tokens (runs of
// variable-only tokens become gaps), routed by constant count and leading
// constants, and joined to the most similar template of that route.
package logs

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxTemplates = 10000
	DefaultSimilarity   = 0.85
	DefaultPrefixTokens = 1
)

// Options tunes a Miner. The zero value works for any system: there are no
// per-system settings to make.
type Options struct {
	// MaxTemplates caps the number of templates kept; beyond it the least
	// recently used template is evicted (a later message of its shape starts a
	// new template with a new id). Default 10000.
	MaxTemplates int
	// Masks are user masks, applied to the whole message, in order, before
	// the built-in ones. A match is replaced by <Name>.
	Masks []Mask
	// Similarity is the share of constant tokens (0..1] a message must share
	// with a template, position by position, to join it (a varied
	// position counts as not shared). Default 0.85.
	Similarity float64
	// PrefixTokens is how many leading constant tokens must match exactly
	// for a message to join a template (Drain's tree depth less two).
	// Default 1; negative means 0.
	PrefixTokens int
	// OnEvict, if set, is called with each template as it is evicted.
	OnEvict func(Template)
}

// Template is a mined template.
type Template struct {
	ID uint64
	// Text is the template's tokens joined by a space, variables shown as
	// <*> or a named placeholder such as <IP>, <NUM> or a user mask's <Name>.
	Text string
	// Count is how many messages joined the template.
	Count uint64
	// Size is the number of tokens in Text.
	Size int
}

// Miner mines templates from messages. It is not safe for concurrent use.
// For a given Options and sequence of messages its results are deterministic.
type Miner struct {
	maxTemplates int
	similarity   float64
	prefix       int
	onEvict      func(Template)
	masks        []userMask
	userNames    map[string]struct{}

	leaves   map[string]*leaf
	clusters map[uint64]*cluster
	nextID   uint64
	tick     uint64
	// LRU list: head is most recently used.
	head, tail *cluster

	// Scratch space reused across Add calls.
	toks   []token
	consts []string
	gaps   [][2]int // token index range [from,to) of each gap
	key    []byte
}

type leaf struct {
	key      string
	clusters []*cluster
}

// cluster is one template. consts holds its constant tokens (wildcard where
// they varied); gaps[i] is the text of the variable run before consts[i]
// (gaps[len(consts)] the one after the last), gapState its flags.
type cluster struct {
	id       uint64
	count    uint64
	tick     uint64
	consts   []string
	gaps     []string
	gapState []uint8
	leaf     *leaf
	newer    *cluster
	older    *cluster
}

const (
	gapSeenEmpty uint8 = 1 << iota
	gapSeenText
	gapVaried
)

// NewMiner returns a Miner with opts. It fails if a mask is invalid.
func NewMiner(opts Options) (*Miner, error) {
	m := &Miner{
		maxTemplates: opts.MaxTemplates,
		similarity:   opts.Similarity,
		prefix:       opts.PrefixTokens,
		onEvict:      opts.OnEvict,
		leaves:       make(map[string]*leaf),
		clusters:     make(map[uint64]*cluster),
		nextID:       1,
	}
	if m.maxTemplates <= 0 {
		m.maxTemplates = DefaultMaxTemplates
	}
	if m.similarity <= 0 || m.similarity > 1 {
		if m.similarity != 0 {
			return nil, fmt.Errorf("similarity %v: want a value in (0, 1]", opts.Similarity)
		}
		m.similarity = DefaultSimilarity
	}
	if m.prefix == 0 {
		m.prefix = DefaultPrefixTokens
	} else if m.prefix < 0 {
		m.prefix = 0
	}
	for _, mk := range opts.Masks {
		if mk.Name == "" || strings.ContainsAny(mk.Name, "<> \t\n") {
			return nil, fmt.Errorf("mask %q: name must be non-empty, without spaces or angle brackets", mk.Name)
		}
		re, err := regexp.Compile(mk.Regex)
		if err != nil {
			return nil, fmt.Errorf("mask %q: %w", mk.Name, err)
		}
		if re.MatchString("") {
			return nil, fmt.Errorf("mask %q: %q matches the empty string: it would mask between every character", mk.Name, mk.Regex)
		}
		if m.userNames == nil {
			m.userNames = make(map[string]struct{})
		}
		m.userNames[mk.Name] = struct{}{}
		m.masks = append(m.masks, userMask{re: re, repl: "<" + mk.Name + ">"})
	}
	return m, nil
}

// Len returns the number of templates kept.
func (m *Miner) Len() int { return len(m.clusters) }

// Add mines one message and returns the id of its template, and whether
// that template was created by this message.
func (m *Miner) Add(message string) (id uint64, isNew bool) {
	for _, um := range m.masks {
		message = um.re.ReplaceAllLiteralString(message, um.repl)
	}
	m.split(message)
	m.tick++

	key := m.routeKey()
	lf := m.leaves[string(key)]
	if lf != nil {
		if c := m.best(lf); c != nil {
			m.join(c)
			return c.id, false
		}
	} else {
		lf = &leaf{key: string(key)}
		m.leaves[lf.key] = lf
	}
	c := m.create(lf)
	for len(m.clusters) > m.maxTemplates {
		m.evict(m.tail)
	}
	return c.id, true
}

// split tokenizes message into m.toks, m.consts and m.gaps.
func (m *Miner) split(message string) {
	m.toks = m.tokenize(m.toks[:0], message)
	m.consts = m.consts[:0]
	m.gaps = m.gaps[:0]
	from := 0
	for i, t := range m.toks {
		if t.varOnly {
			continue
		}
		m.gaps = append(m.gaps, [2]int{from, i})
		m.consts = append(m.consts, t.text)
		from = i + 1
	}
	m.gaps = append(m.gaps, [2]int{from, len(m.toks)})
}

func (m *Miner) routeKey() []byte {
	m.key = leafKey(m.key[:0], m.consts, m.prefix)
	return m.key
}

// leafKey appends the route of a message or template with consts: the
// number of constants and the first prefix of them.
func leafKey(k []byte, consts []string, prefix int) []byte {
	n := len(consts)
	k = binary.AppendUvarint(k, uint64(n))
	for i := 0; i < prefix && i < n; i++ {
		k = append(k, 0)
		k = append(k, consts[i]...)
	}
	return k
}

// best returns the most similar cluster of lf at or above the threshold.
func (m *Miner) best(lf *leaf) *cluster {
	n := len(m.consts)
	var best *cluster
	bestSim, bestWild := -1.0, -1
	for _, c := range lf.clusters {
		same, wild := 0, 0
		for i, t := range c.consts {
			if t == wildcard {
				wild++
			} else if t == m.consts[i] {
				same++
			}
		}
		sim := 1.0
		if n > 0 {
			sim = float64(same) / float64(n)
		}
		if sim > bestSim || sim == bestSim && wild > bestWild {
			best, bestSim, bestWild = c, sim, wild
		}
	}
	if best == nil || bestSim < m.similarity {
		return nil
	}
	return best
}

func (m *Miner) gapEqual(s string, g [2]int) bool {
	for i := g[0]; i < g[1]; i++ {
		if i > g[0] {
			if s == "" || s[0] != ' ' {
				return false
			}
			s = s[1:]
		}
		t := m.toks[i].text
		if !strings.HasPrefix(s, t) {
			return false
		}
		s = s[len(t):]
	}
	return s == ""
}

func (m *Miner) gapText(g [2]int) string {
	switch g[1] - g[0] {
	case 0:
		return ""
	case 1:
		return strings.Clone(m.toks[g[0]].text)
	}
	var b strings.Builder
	for i := g[0]; i < g[1]; i++ {
		if i > g[0] {
			b.WriteByte(' ')
		}
		b.WriteString(m.toks[i].text)
	}
	return b.String()
}

// join adds the current message to c, generalising c where they differ.
func (m *Miner) join(c *cluster) {
	for i, t := range c.consts {
		if t != wildcard && t != m.consts[i] {
			c.consts[i] = wildcard
		}
	}
	for i, g := range m.gaps {
		st := c.gapState[i]
		if g[0] == g[1] {
			st |= gapSeenEmpty
		} else if st&gapSeenText == 0 {
			st |= gapSeenText
			c.gaps[i] = m.gapText(g)
		} else if st&gapVaried == 0 && !m.gapEqual(c.gaps[i], g) {
			st |= gapVaried
			c.gaps[i] = ""
		}
		c.gapState[i] = st
	}
	c.count++
	c.tick = m.tick
	m.touch(c)
}

func (m *Miner) create(lf *leaf) *cluster {
	n := len(m.consts)
	c := &cluster{
		id:       m.nextID,
		count:    1,
		tick:     m.tick,
		consts:   make([]string, n),
		gaps:     make([]string, n+1),
		gapState: make([]uint8, n+1),
		leaf:     lf,
	}
	m.nextID++
	for i, t := range m.consts {
		c.consts[i] = strings.Clone(t)
	}
	for i, g := range m.gaps {
		if g[0] == g[1] {
			c.gapState[i] = gapSeenEmpty
		} else {
			c.gapState[i] = gapSeenText
			c.gaps[i] = m.gapText(g)
		}
	}
	lf.clusters = append(lf.clusters, c)
	m.clusters[c.id] = c
	m.pushFront(c)
	return c
}

func (m *Miner) evict(c *cluster) {
	if m.onEvict != nil {
		m.onEvict(c.template())
	}
	m.unlink(c)
	delete(m.clusters, c.id)
	lf := c.leaf
	if i := slices.Index(lf.clusters, c); i >= 0 {
		lf.clusters = slices.Delete(lf.clusters, i, i+1)
	}
	if len(lf.clusters) == 0 {
		delete(m.leaves, lf.key)
	}
}

func (m *Miner) pushFront(c *cluster) {
	c.older = m.head
	c.newer = nil
	if m.head != nil {
		m.head.newer = c
	}
	m.head = c
	if m.tail == nil {
		m.tail = c
	}
}

func (m *Miner) unlink(c *cluster) {
	if c.newer != nil {
		c.newer.older = c.older
	} else {
		m.head = c.older
	}
	if c.older != nil {
		c.older.newer = c.newer
	} else {
		m.tail = c.newer
	}
	c.newer, c.older = nil, nil
}

func (m *Miner) touch(c *cluster) {
	if m.head == c {
		return
	}
	m.unlink(c)
	m.pushFront(c)
}

// text renders c's template and counts its tokens.
func (c *cluster) text() (string, int) {
	var b strings.Builder
	size := 0
	word := func(s string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	for i := range c.gaps {
		st := c.gapState[i]
		switch {
		case st&gapSeenText == 0:
		case st&(gapVaried|gapSeenEmpty) != 0:
			word(wildcard)
			size++
		default:
			word(c.gaps[i])
			size += strings.Count(c.gaps[i], " ") + 1
		}
		if i < len(c.consts) {
			word(c.consts[i])
			size++
		}
	}
	return b.String(), size
}

func (c *cluster) template() Template {
	text, size := c.text()
	return Template{ID: c.id, Text: text, Count: c.count, Size: size}
}

// Template returns the template with id, if it is kept.
func (m *Miner) Template(id uint64) (Template, bool) {
	c, ok := m.clusters[id]
	if !ok {
		return Template{}, false
	}
	return c.template(), true
}

// Templates returns all kept templates ordered by ID.
func (m *Miner) Templates() []Template {
	out := make([]Template, 0, len(m.clusters))
	for _, c := range m.clusters {
		out = append(out, c.template())
	}
	slices.SortFunc(out, func(a, b Template) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
