#!/usr/bin/env python3
"""Read INI files exactly as batou does and print what CPython sees.

batou (src/batou/environment.py, class Config) does:

    config = RawConfigParser()
    config.optionxform = lambda optionstr: optionstr
    config.read(path)

This script does the same for every file named on the command line (or, with
--serve, for inputs sent over stdin) and prints one JSON document per file, the
shape `devhost debug cfg` prints:

    {"sections": {"<section>": {"<option>": "<value>"}}}   (DEFAULT merged in)
    {"error": "<Python exception class name>"}

Usage:
    configparser_json.py FILE...    one JSON line per FILE, in order
    configparser_json.py --serve    persistent mode for the Go fuzz target:
        reads records "<decimal length>\\n<bytes>" from stdin and answers
        "<decimal length>\\n<json>" on stdout for each.

In --serve mode the bytes are not written to a file: they are read through
io.TextIOWrapper(io.BytesIO(data), encoding="locale"), the same stack that
open(path) builds (BufferedReader and BytesIO both hand TextIOWrapper the
same 8192-byte chunks, which decides when a UnicodeDecodeError is raised),
then config.read_file() runs the same _read() as config.read().
"""
import configparser
import json
import io
import sys


def read(path=None, data=None):
    config = configparser.RawConfigParser()
    config.optionxform = lambda optionstr: optionstr
    try:
        if data is None:
            config.read(path)
        else:
            config.read_file(io.TextIOWrapper(io.BytesIO(data), encoding="locale"), "<input>")
    except Exception as e:  # the class name is the result
        return {"error": type(e).__name__}
    return {
        "sections": {
            s: {o: config.get(s, o) for o in config.options(s)}
            for s in config.sections()
        }
    }


def dump(obj):
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


def serve():
    inp = sys.stdin.buffer
    out = sys.stdout.buffer
    while True:
        header = inp.readline()
        if not header:
            return
        data = inp.read(int(header))
        answer = dump(read(data=data)).encode("utf-8", "surrogatepass")
        out.write(b"%d\n" % len(answer))
        out.write(answer)
        out.flush()


def main(argv):
    if argv[1:] == ["--serve"]:
        serve()
        return
    for path in argv[1:]:
        sys.stdout.buffer.write(dump(read(path)).encode("utf-8", "surrogatepass") + b"\n")


if __name__ == "__main__":
    main(sys.argv)
