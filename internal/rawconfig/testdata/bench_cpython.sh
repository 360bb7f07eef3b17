#!/bin/sh
# Compare devhost's environment.cfg reader with CPython's RawConfigParser on
# the same generated 10,000-line file (the issue's target: Go at least 20x
# faster) and on one value continued over 40,000 lines (no slower than
# CPython), and show that the reader is linear in the size (1k/10k/100k
# lines, and 1k/10k/40k continuation lines).
#
# Usage (from anywhere in the repository):
#   internal/rawconfig/testdata/bench_cpython.sh
#
# BenchmarkVsCPython writes each file (realisticFile(10000) and the
# "continued value" shape in growth_test.go),
# runs testdata/bench_cpython.py on it (RawConfigParser().read(path) with
# optionxform = str, as batou does), times os.ReadFile + rawconfig.Parse
# the same way (best of 50 single reads, each from a collected heap, as
# each program reads the file once per process), and reports
#   cpython-best-ns/read  go-best-ns/read  x-faster
# and for back-to-back reads in one process (garbage collection included):
#   cpu-ns/op (CPU time of all threads per read)  gc/op  x-faster-b2b
# Needs python3 on PATH (the benchmark skips without it).
set -eu
cd "$(dirname "$0")/.."
exec go test -run '^$' -bench 'BenchmarkVsCPython|BenchmarkParseLines|BenchmarkParseContinued|BenchmarkParseFixtures' -benchmem -count "${COUNT:-1}" .
