#!/usr/bin/env python3
"""Time CPython reading FILE the way batou does (RawConfigParser with
case-sensitive option names, config.read(path)).

Usage: bench_cpython.py FILE [ROUNDS]

Prints the best time of one read in nanoseconds (min over ROUNDS timings of
a loop sized to take about 0.2 s), the figure BenchmarkVsCPython compares
with Go. Run by `make bench` through that benchmark, or by
testdata/bench_cpython.sh.
"""
import configparser
import sys
import time


def read(path):
    config = configparser.RawConfigParser()
    config.optionxform = lambda optionstr: optionstr
    config.read(path)
    return config


def main():
    path = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    # Size the loop: at least one read, about 0.2 s per round.
    t0 = time.perf_counter_ns()
    read(path)
    one = max(time.perf_counter_ns() - t0, 1)
    loops = max(1, int(2e8 // one))
    best = None
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(loops):
            read(path)
        per = (time.perf_counter_ns() - t0) / loops
        best = per if best is None else min(best, per)
    print(int(best))


if __name__ == "__main__":
    main()
