#!/usr/bin/env bash
# Builds the connection-table parser's libFuzzer target with ASan and UBSan and runs it for a
# bounded time on a working copy of the seed corpus. Any crash, sanitizer report or broken
# invariant fails the script and leaves the reproducer in .cache/fuzz/.
#
#   scripts/fuzz.sh [seconds]        (default 60; FUZZ_SECONDS also works)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-${FUZZ_SECONDS:-60}}"
out=.cache/fuzz
mkdir -p "$out" fuzz/corpus-run
command -v clang++ >/dev/null || { echo "fuzz: clang++ is required" >&2; exit 1; }

echo "=== building fuzz/conn_parser_fuzz.cc"
clang++ -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined fuzz/conn_parser_fuzz.cc native/conn_parser.cc -o "$out/conn_parser_fuzz"

echo "=== fuzzing for ${seconds}s"
# New inputs go to fuzz/corpus-run (ignored by git); fuzz/corpus stays the small seed set.
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  "$out/conn_parser_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
  -print_final_stats=1 -artifact_prefix="$out/" fuzz/corpus-run fuzz/corpus
