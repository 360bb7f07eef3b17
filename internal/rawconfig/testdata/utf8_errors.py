#!/usr/bin/env python3
"""For each hex-encoded byte string on stdin, print how CPython's UTF-8
decoder fails on it: "<raises when not final> <raises when final> <start>"
(1/0 flags; start is the error's start offset or -1). The Go test compares
this with rawconfig's invalidUTF8, which decides when TextIOWrapper's
chunked decoding raises UnicodeDecodeError."""
import codecs
import sys

for line in sys.stdin:
    data = bytes.fromhex(line.strip())
    dec = codecs.getincrementaldecoder("utf-8")()
    try:
        dec.decode(data, False)
        partial = 0
    except UnicodeDecodeError:
        partial = 1
    try:
        data.decode("utf-8")
        final, start = 0, -1
    except UnicodeDecodeError as e:
        final, start = 1, e.start
    print(partial, final, start)
