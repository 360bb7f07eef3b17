package runner

import (
	"bytes"
	"fmt"
)

// digest keeps a bounded summary of a program's output for people: its
// first headLines lines and its last tailLines lines, each line cut to its
// first and last keep bytes. Nix reports an error in a few short lines —
// the message, "at /path/provision.nix:12:3:", the source line — of which
// one may be huge (a 64 KiB source line, a message quoting a long value):
// cutting every line in the middle, instead of keeping only the end of the
// output, keeps the short lines and with them the position. Memory stays
// within (headLines+tailLines+1) lines of about 2×keep bytes, however much
// is written.
type digest struct {
	headLines, tailLines, keep int

	head, tail [][]byte
	dropped    int // lines left out between head and tail

	cur    []byte // the current line's first keep bytes
	curEnd []byte // and its last bytes after those (at most 2×keep kept)
	curLen int    // its length
}

// Output digests as Result.Stderr holds them.
const (
	digestHeadLines = 40
	digestTailLines = 60
	digestKeep      = 256
)

func newDigest() *digest {
	return &digest{headLines: digestHeadLines, tailLines: digestTailLines, keep: digestKeep}
}

func (d *digest) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		d.add(seg)
		if i < 0 {
			break
		}
		d.push(d.current())
		p = p[i+1:]
	}
	return n, nil
}

// add appends seg (no newline) to the current line.
func (d *digest) add(seg []byte) {
	d.curLen += len(seg)
	if room := d.keep - len(d.cur); room > 0 {
		k := min(room, len(seg))
		d.cur = append(d.cur, seg[:k]...)
		seg = seg[k:]
	}
	if len(seg) > d.keep {
		seg = seg[len(seg)-d.keep:]
	}
	d.curEnd = append(d.curEnd, seg...)
	if len(d.curEnd) > 2*d.keep {
		d.curEnd = append(d.curEnd[:0], d.curEnd[len(d.curEnd)-d.keep:]...)
	}
}

// current returns the current line, cut in the middle when long.
func (d *digest) current() []byte {
	out := append([]byte(nil), d.cur...)
	extra := d.curLen - len(d.cur)
	if extra == len(d.curEnd) && extra <= d.keep {
		return append(out, d.curEnd...)
	}
	end := d.curEnd[len(d.curEnd)-d.keep:]
	out = fmt.Appendf(out, " …[%d bytes]… ", extra-len(end))
	return append(out, end...)
}

func (d *digest) push(line []byte) {
	d.cur, d.curEnd, d.curLen = d.cur[:0], d.curEnd[:0], 0
	if len(d.head) < d.headLines {
		d.head = append(d.head, line)
		return
	}
	if len(d.tail) == d.tailLines {
		copy(d.tail, d.tail[1:])
		d.tail = d.tail[:len(d.tail)-1]
		d.dropped++
	}
	d.tail = append(d.tail, line)
}

// Bytes is the digest: head lines, a note of what was left out, tail lines,
// and the unfinished last line.
func (d *digest) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range d.head {
		b.Write(l)
		b.WriteByte('\n')
	}
	if d.dropped > 0 {
		fmt.Fprintf(&b, "…[%d lines]…\n", d.dropped)
	}
	for _, l := range d.tail {
		b.Write(l)
		b.WriteByte('\n')
	}
	if d.curLen > 0 {
		b.Write(d.current())
	}
	return b.Bytes()
}

// Shorten returns s cut to about max bytes by leaving out its middle (the
// first third and the last two thirds are kept, at UTF-8 boundaries): a
// command's error starts with what failed and where, and ends with why.
func Shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	h := max / 3
	t := len(s) - (max - h)
	for h > 0 && !isRuneStart(s[h]) {
		h--
	}
	for t < len(s) && !isRuneStart(s[t]) {
		t++
	}
	return s[:h] + "\n…\n" + s[t:]
}

func isRuneStart(b byte) bool { return b&0xc0 != 0x80 }
