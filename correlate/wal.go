package correlate

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// A Record is one step's writes to the store: the puts and deletes that
// apply the engine's changes. Records are what the write-ahead log holds
// and what a checkpoint applies to bbolt, so recovery replays writes, not
// computations.
type Record struct {
	LSN uint64
	Ops []Op
}

// Op is one write of a Record.
type Op struct {
	Delete bool
	Bucket uint8 // index into storeBuckets
	Key    []byte
	Value  []byte
}

// ErrWALCorrupt is returned when a log segment other than the last is damaged.
var ErrWALCorrupt = errors.New("write-ahead log corrupt")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// WAL is an append-only log of Records in segment files. Append returns
// once the record is on disk (fsync): sequential appends make a durable
// acknowledgement cost one small write, whatever the state's size.
// Append and Release may be called from different goroutines.
type WAL struct {
	mu     sync.Mutex
	dir    string
	f      *os.File
	size   int64
	maxSeg int64
	segs   []uint64 // first LSN of each segment, ascending; the last is open
	next   uint64
	buf    []byte // reused by AppendAll
	// alloc is the open segment's length on disk: past size, zeros written
	// ahead so that an append neither grows the file nor changes its
	// metadata, and its sync is a data-only sync (about half the time of a
	// sync that also grows the file). Replay ends at the zeros as at any
	// torn end.
	alloc int64
}

// preallocChunk is how far ahead of the records a segment is zero-filled;
// writing and syncing it takes about a millisecond.
const preallocChunk = 1 << 20

// zeros is what segments are filled with ahead of the records; never written to.
var zeros = make([]byte, 64<<10)

const walSuffix = ".wal"

// OpenWAL opens the log in dir, calls replay with every intact record whose
// LSN is above after, in order, and returns the log ready to append. A torn
// record at the end of the last segment (a crash during a write) is cut off.
func OpenWAL(dir string, after uint64, maxSegment int64, replay func(*Record) error) (*WAL, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating wal dir: %w", err)
	}
	if maxSegment <= 0 {
		maxSegment = 64 << 20
	}
	w := &WAL{dir: dir, maxSeg: maxSegment, next: after + 1}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading wal dir: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), walSuffix)
		if !ok {
			continue
		}
		first, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		w.segs = append(w.segs, first)
	}
	slices.Sort(w.segs)
	var last uint64
	for i, first := range w.segs {
		isLast := i == len(w.segs)-1
		end, good, err := w.scan(first, isLast, func(r *Record) error {
			if last != 0 && r.LSN != last+1 {
				return fmt.Errorf("%w: record %d follows %d", ErrWALCorrupt, r.LSN, last)
			}
			last = r.LSN
			if r.LSN > after {
				return replay(r)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if !good && !isLast {
			return nil, fmt.Errorf("%w: segment %s is damaged at byte %d", ErrWALCorrupt, w.path(first), end)
		}
		if isLast {
			// Appends go right after the last intact record: cut a torn
			// record, or the zeros written ahead, that follow it.
			fi, err := os.Stat(w.path(first))
			if err != nil {
				return nil, fmt.Errorf("opening wal segment: %w", err)
			}
			if fi.Size() > end {
				if err := os.Truncate(w.path(first), end); err != nil {
					return nil, fmt.Errorf("cutting the end of %s after its last record: %w", w.path(first), err)
				}
			}
		}
	}
	if last >= w.next {
		w.next = last + 1
	}
	if last != 0 && last < after {
		// Everything logged is in the store already (the log was cut short
		// by hand?): drop it and start afresh at after+1.
		for _, first := range w.segs {
			if err := os.Remove(w.path(first)); err != nil {
				return nil, fmt.Errorf("removing stale wal segment: %w", err)
			}
		}
		w.segs = nil
	}
	if err := w.openTail(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *WAL) path(first uint64) string {
	return filepath.Join(w.dir, fmt.Sprintf("%016x%s", first, walSuffix))
}

// scan reads one segment. It returns the offset after the last intact
// record and whether the whole file was intact.
func (w *WAL) scan(first uint64, isLast bool, fn func(*Record) error) (int64, bool, error) {
	f, err := os.Open(w.path(first))
	if err != nil {
		return 0, false, fmt.Errorf("opening wal segment: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var head [8]byte
	for {
		if n, err := io.ReadFull(r, head[:]); err != nil || head == [8]byte{} {
			// The end; or the zeros written ahead of the records (also cut
			// short, by a truncate lost in a crash after a rollover): the
			// end too when only zeros follow.
			return off, errors.Is(err, io.EOF) || allZero(head[:n]) && restZero(r), nil
		}
		n := binary.LittleEndian.Uint32(head[:4])
		if n > 1<<30 {
			return off, false, nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return off, false, nil
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(head[4:]) {
			return off, false, nil
		}
		rec, err := decodeRecord(payload)
		if err != nil {
			return off, false, nil
		}
		if err := fn(rec); err != nil {
			return off, false, err
		}
		off += 8 + int64(n)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// restZero reports whether r holds nothing but zeros.
func restZero(r io.Reader) bool {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if !allZero(buf[:n]) {
			return false
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

// closeTail cuts the zeros written ahead off the open segment and closes it.
func (w *WAL) closeTail() error {
	if w.alloc > w.size {
		if err := w.f.Truncate(w.size); err != nil {
			w.f.Close()
			return fmt.Errorf("cutting the preallocated end of a wal segment: %w", err)
		}
	}
	return w.f.Close()
}

func (w *WAL) openTail() error {
	if len(w.segs) == 0 {
		w.segs = []uint64{w.next}
	}
	p := w.path(w.segs[len(w.segs)-1])
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("opening wal segment: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening wal segment: %w", err)
	}
	w.f, w.size, w.alloc = f, fi.Size(), fi.Size()
	return syncDir(w.dir)
}

// AppendAll gives the records the next LSNs, in order, writes them with
// one write and syncs them with one fsync: a group commit. A new segment
// starts before the group when the current one is full, so a segment may
// exceed its size by one group.
func (w *WAL) AppendAll(recs []*Record) error {
	if len(recs) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("wal closed")
	}
	if w.size >= w.maxSeg {
		if err := w.closeTail(); err != nil {
			w.f = nil
			return fmt.Errorf("closing wal segment: %w", err)
		}
		w.segs = append(w.segs, w.next)
		if err := w.openTail(); err != nil {
			w.f = nil
			return err
		}
	}
	buf := w.buf[:0]
	next := w.next
	for _, r := range recs {
		r.LSN = next
		next++
		start := len(buf)
		buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0)
		buf = appendRecord(buf, r)
		payload := buf[start+8:]
		binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, crcTable))
	}
	if cap(buf) <= 4<<20 {
		w.buf = buf // keep a modest buffer for the next group
	}
	if end := w.size + int64(len(buf)); end > w.alloc {
		// Zero-fill the next chunk first: the sync below makes both durable.
		grow := max(preallocChunk, end-w.alloc)
		for done := int64(0); done < grow; {
			n := min(grow-done, int64(len(zeros)))
			if _, err := w.f.WriteAt(zeros[:n], w.alloc+done); err != nil {
				return fmt.Errorf("extending wal segment: %w", err)
			}
			done += n
		}
		w.alloc += grow
	}
	if _, err := w.f.WriteAt(buf, w.size); err != nil {
		return fmt.Errorf("writing wal: %w", err)
	}
	if err := datasync(w.f); err != nil {
		return fmt.Errorf("syncing wal: %w", err)
	}
	w.size += int64(len(buf))
	w.next = next
	return nil
}

// Release deletes the segments whose records all have an LSN up to upTo:
// the store holds them.
func (w *WAL) Release(upTo uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for n+1 < len(w.segs) && w.segs[n+1] <= upTo+1 {
		if err := os.Remove(w.path(w.segs[n])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing wal segment: %w", err)
		}
		n++
	}
	w.segs = w.segs[n:]
	return nil
}

// Segments is the number of segment files, for metrics and tests.
func (w *WAL) Segments() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.segs)
}

// Close closes the log.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.closeTail()
	w.f = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing wal dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing wal dir: %w", err)
	}
	return nil
}

// Record encoding: uvarint LSN, uvarint op count, then per op a flags byte
// (bit 0: delete), the bucket, and the key and value with uvarint lengths.
func encodeRecord(r *Record) []byte {
	size := 20
	for _, op := range r.Ops {
		size += 12 + len(op.Key) + len(op.Value)
	}
	return appendRecord(make([]byte, 0, size), r)
}

func appendRecord(b []byte, r *Record) []byte {
	b = binary.AppendUvarint(b, r.LSN)
	b = binary.AppendUvarint(b, uint64(len(r.Ops)))
	for _, op := range r.Ops {
		var flags byte
		if op.Delete {
			flags = 1
		}
		b = append(b, flags, op.Bucket)
		b = binary.AppendUvarint(b, uint64(len(op.Key)))
		b = append(b, op.Key...)
		b = binary.AppendUvarint(b, uint64(len(op.Value)))
		b = append(b, op.Value...)
	}
	return b
}

// size is the record's approximate memory: what a queue of records holds.
func (r *Record) size() int64 {
	n := int64(64)
	for _, op := range r.Ops {
		n += 64 + int64(len(op.Key)+len(op.Value))
	}
	return n
}

var errBadRecord = errors.New("malformed wal record")

func decodeRecord(b []byte) (*Record, error) {
	lsn, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errBadRecord
	}
	b = b[n:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, errBadRecord
	}
	b = b[n:]
	r := &Record{LSN: lsn, Ops: make([]Op, 0, count)}
	bytesOf := func() ([]byte, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, false
		}
		v := b[n : n+int(l)]
		b = b[n+int(l):]
		return v, true
	}
	for i := uint64(0); i < count; i++ {
		if len(b) < 2 || b[1] >= uint8(len(storeBuckets)) {
			return nil, errBadRecord
		}
		op := Op{Delete: b[0]&1 == 1, Bucket: b[1]}
		b = b[2:]
		var ok bool
		if op.Key, ok = bytesOf(); !ok {
			return nil, errBadRecord
		}
		if op.Value, ok = bytesOf(); !ok {
			return nil, errBadRecord
		}
		r.Ops = append(r.Ops, op)
	}
	if len(b) != 0 {
		return nil, errBadRecord
	}
	return r, nil
}
