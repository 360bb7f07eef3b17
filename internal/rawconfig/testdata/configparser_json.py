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
        reads records "<decimal length>\\n<bytes>" from stdin, writes each
        input to a scratch file, reads it with config.read() and answers
        "<decimal length>\\n<json>" on stdout.
"""
import configparser
import json
import os
import sys
import tempfile


def read(path):
    config = configparser.RawConfigParser()
    config.optionxform = lambda optionstr: optionstr
    try:
        config.read(path)
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
    fd, scratch = tempfile.mkstemp(suffix=".cfg")
    os.close(fd)
    inp = sys.stdin.buffer
    out = sys.stdout.buffer
    try:
        while True:
            header = inp.readline()
            if not header:
                return
            data = inp.read(int(header))
            with open(scratch, "wb") as f:
                f.write(data)
            answer = dump(read(scratch)).encode("utf-8", "surrogatepass")
            out.write(b"%d\n" % len(answer))
            out.write(answer)
            out.flush()
    finally:
        os.unlink(scratch)


def main(argv):
    if argv[1:] == ["--serve"]:
        serve()
        return
    for path in argv[1:]:
        sys.stdout.buffer.write(dump(read(path)).encode("utf-8", "surrogatepass") + b"\n")


if __name__ == "__main__":
    main(sys.argv)
