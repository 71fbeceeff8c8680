package ingest

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestSpecial: the 8-byte test agrees with the byte table, whatever the
// byte and its place, alone or among others.
func TestSpecial(t *testing.T) {
	for c := range 256 {
		for p := range 8 {
			b := []byte("aaaaaaaa")
			b[p] = byte(c)
			if got := special(binary.LittleEndian.Uint64(b)); got != !strPlain[c] {
				t.Fatalf("special(%q) = %t", b, got)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		var b [8]byte
		want := false
		for i := range b {
			b[i] = byte(r.IntN(256))
			want = want || !strPlain[b[i]]
		}
		if got := special(binary.LittleEndian.Uint64(b[:])); got != want {
			t.Fatalf("special(%q) = %t, want %t", b, got, want)
		}
	}
}
