package problems

import bolt "go.etcd.io/bbolt"

// RewindCursor moves the feed cursor back, as if the evaluations after it
// had not been recorded: tests use it to show re-evaluation is harmless.
func (t *Tracker) RewindCursor(to uint64) error {
	return t.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyCursor, u64(to)) })
}

// Cursor is the last change the tracker evaluated.
func (t *Tracker) Cursor() (uint64, error) {
	var c uint64
	err := t.db.View(func(tx *bolt.Tx) error { c = cursor(tx); return nil })
	return c, err
}

// Occurrences is how many occurrences the tracker keeps, of every key.
func (t *Tracker) Occurrences() (int, error) {
	var n int
	err := t.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketOccur).Stats().KeyN; return nil })
	return n, err
}
