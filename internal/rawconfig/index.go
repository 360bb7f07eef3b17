package rawconfig

import "hash/maphash"

// nameTable finds sections or options by name once there are many: an
// open-addressing hash table of indexes, without pointers (a map keyed by
// strings would be one more object per file for the collector to scan).
// The names themselves stay in the source; nameAt gives the name of an
// index.
type nameTable struct {
	seed maphash.Seed
	// slots hold 1 + an index, or 0 when free; len(slots) is a power of
	// two at least twice the number of names.
	slots []int32
	n     int
}

// newNameTable makes a table with room for size names before it grows.
func newNameTable(size int) *nameTable {
	n := 32
	for n < 2*size {
		n *= 2
	}
	return &nameTable{seed: maphash.MakeSeed(), slots: make([]int32, n)}
}

// find returns the index called name, or -1.
func (t *nameTable) find(name string, nameAt func(int32) string) int32 {
	mask := len(t.slots) - 1
	for i := int(maphash.String(t.seed, name)) & mask; ; i = (i + 1) & mask {
		v := t.slots[i]
		if v == 0 {
			return -1
		}
		if nameAt(v-1) == name {
			return v - 1
		}
	}
}

// add records index i under its name, which must not be in t yet.
func (t *nameTable) add(i int32, nameAt func(int32) string) {
	if 2*(t.n+1) > len(t.slots) {
		old := t.slots
		t.slots = make([]int32, 2*len(old))
		for _, v := range old {
			if v != 0 {
				t.insert(v, nameAt)
			}
		}
	}
	t.insert(i+1, nameAt)
	t.n++
}

func (t *nameTable) insert(v int32, nameAt func(int32) string) {
	mask := len(t.slots) - 1
	i := int(maphash.String(t.seed, nameAt(v-1))) & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = v
}
