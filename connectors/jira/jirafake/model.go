package jirafake

import (
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// issue is the stored state of one issue. Values are copied into versions for the search index,
// so everything reachable from it is either immutable or copied by clone.
type issue struct {
	id          int
	num         int
	key         string
	project     *project
	issueType   issueTypeDef
	summary     string
	description string
	status      statusDef
	statusAt    time.Time // statuscategorychangedate
	resolution  string
	resolvedAt  time.Time
	priority    string
	labels      []string
	components  []string
	custom      map[string]any // normalised values: string, float64, []string
	props       map[string]json.RawMessage
	assignee    *User
	reporter    *User
	creator     *User
	created     time.Time
	updated     time.Time
	comments    []*comment // comments are immutable once added
	histories   []*history // immutable once added
}

type comment struct {
	id      int
	author  *User
	body    string
	created time.Time
}

type history struct {
	id      int
	author  *User
	created time.Time
	items   []changeItem
}

type changeItem struct {
	Field      string
	FieldType  string
	FieldID    string
	From       *string
	FromString *string
	To         *string
	ToString   *string
}

// version is the state of an issue as the search index holds it from visibleAt on.
type version struct {
	visibleAt time.Time
	state     *issue
}

func (i *issue) clone() *issue {
	c := *i
	c.labels = slices.Clone(i.labels)
	c.components = slices.Clone(i.components)
	c.custom = maps.Clone(i.custom)
	for k, v := range c.custom {
		if l, ok := v.([]string); ok {
			c.custom[k] = slices.Clone(l)
		}
	}
	c.props = maps.Clone(i.props)
	c.comments = slices.Clone(i.comments)
	c.histories = slices.Clone(i.histories)
	return &c
}

func strp(s string) *string { return &s }
