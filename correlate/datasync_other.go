//go:build !linux

package correlate

import "os"

// datasync makes f's data durable: a full sync where fdatasync(2) is not
// available.
func datasync(f *os.File) error { return f.Sync() }
