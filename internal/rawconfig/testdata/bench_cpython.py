#!/usr/bin/env python3
"""Time CPython reading FILE the way batou does (RawConfigParser with
case-sensitive option names, config.read(path)).

Usage: bench_cpython.py FILE [READS]

Prints the best (minimum) wall-clock time of one read in nanoseconds over
READS reads (default 50), each started after gc.collect() outside the timed
part: one read from a clean heap, as batou does once per process.
BenchmarkVsCPython measures Go the same way (runtime.GC() before each read)
and compares; run it with `make bench` or testdata/bench_cpython.sh.
"""
import configparser
import gc
import sys
import time


def read(path):
    config = configparser.RawConfigParser()
    config.optionxform = lambda optionstr: optionstr
    config.read(path)
    return config


def main():
    path = sys.argv[1]
    reads = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    read(path)  # warm up: imports, page cache
    best = None
    for _ in range(reads):
        gc.collect()
        t0 = time.perf_counter_ns()
        read(path)
        t = time.perf_counter_ns() - t0
        best = t if best is None else min(best, t)
    print(best)


if __name__ == "__main__":
    main()
