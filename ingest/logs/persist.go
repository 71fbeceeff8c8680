package logs

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Persisted state format: "TLM" and a version byte, then uvarints and
// length-prefixed strings. Version 1 layout:
//
//	nextID tick nclusters
//	per cluster, by id: id count tick nconsts const... (gapState [gap])...
const (
	persistMagic   = "TLM"
	persistVersion = 1
)

// ErrBadState is returned by UnmarshalBinary for data it cannot read.
var ErrBadState = errors.New("logs: bad miner state")

// MarshalBinary encodes the miner's templates, ids and recency. Masks and
// other Options are not included: restore into a Miner made with the same
// Options to map the same messages to the same template ids.
func (m *Miner) MarshalBinary() ([]byte, error) {
	cs := make([]*cluster, 0, len(m.clusters))
	for _, c := range m.clusters {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *cluster) int { return cmp.Compare(a.id, b.id) })
	b := append([]byte(persistMagic), persistVersion)
	b = binary.AppendUvarint(b, m.nextID)
	b = binary.AppendUvarint(b, m.tick)
	b = binary.AppendUvarint(b, uint64(len(cs)))
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, c := range cs {
		b = binary.AppendUvarint(b, c.id)
		b = binary.AppendUvarint(b, c.count)
		b = binary.AppendUvarint(b, c.tick)
		b = binary.AppendUvarint(b, uint64(len(c.consts)))
		for _, s := range c.consts {
			str(s)
		}
		for i, st := range c.gapState {
			b = append(b, st)
			if st&gapSeenText != 0 && st&gapVaried == 0 {
				str(c.gaps[i])
			}
		}
	}
	return b, nil
}

// UnmarshalBinary replaces the miner's templates with those encoded by
// MarshalBinary. On error the miner is left unchanged.
func (m *Miner) UnmarshalBinary(data []byte) error {
	if len(data) < len(persistMagic)+1 || string(data[:len(persistMagic)]) != persistMagic {
		return fmt.Errorf("%w: not miner state", ErrBadState)
	}
	if v := data[len(persistMagic)]; v != persistVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrBadState, v, persistVersion)
	}
	d := decoder{b: data[len(persistMagic)+1:]}
	nextID, tick, n := d.uvarint(), d.uvarint(), d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail()
	}
	clusters := make(map[uint64]*cluster, n)
	leaves := make(map[string]*leaf)
	order := make([]*cluster, 0, n)
	key := []byte(nil)
	for i := uint64(0); i < n && d.err == nil; i++ {
		c := &cluster{id: d.uvarint(), count: d.uvarint(), tick: d.uvarint()}
		nc := d.uvarint()
		if nc > uint64(len(d.b)) {
			d.fail()
			break
		}
		c.consts = make([]string, nc)
		for j := range c.consts {
			c.consts[j] = d.str()
		}
		c.gaps = make([]string, nc+1)
		c.gapState = make([]uint8, nc+1)
		for j := range c.gapState {
			st := d.byte()
			c.gapState[j] = st
			if st&gapSeenText != 0 && st&gapVaried == 0 {
				c.gaps[j] = d.str()
			}
		}
		if d.err != nil {
			break
		}
		if c.id == 0 || c.id >= nextID || clusters[c.id] != nil || c.tick > tick {
			d.fail()
			break
		}
		key = leafKey(key[:0], c.consts, m.prefix)
		lf := leaves[string(key)]
		if lf == nil {
			lf = &leaf{key: string(key)}
			leaves[lf.key] = lf
		}
		c.leaf = lf
		lf.clusters = append(lf.clusters, c)
		clusters[c.id] = c
		order = append(order, c)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return d.err
	}
	m.clusters, m.leaves, m.nextID, m.tick = clusters, leaves, nextID, tick
	m.head, m.tail = nil, nil
	slices.SortFunc(order, func(a, b *cluster) int { return cmp.Compare(a.tick, b.tick) })
	for _, c := range order {
		m.pushFront(c)
	}
	for len(m.clusters) > m.maxTemplates {
		m.evict(m.tail)
	}
	return nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or corrupt", ErrBadState)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() uint8 {
	if d.err != nil || len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
