#!/usr/bin/env bash
# Builds the libFuzzer targets with ASan and UBSan and runs each for a bounded time on a
# working copy of its seed corpus:
#   conn_parser_fuzz  the connection-table parser (native/conn_parser.cc)
#   codec_fuzz        the netlink codec (native/ipvs_codec.cc): decoders on arbitrary bytes,
#                     and encode -> decode round trips
#   netlink_ack_fuzz  the ack walk and extended-ack parsing (native/netlink_ack.cc): arbitrary
#                     datagrams, and kernel-shaped acks parsed back exactly
#   records_fuzz      the packed-record decoders (native/records.cc): arbitrary words, and
#                     pack -> unpack round trips
#   probe_codec_fuzz  the probe transport's batch and completion codec (native/probe_codec.cc):
#                     arbitrary batches, and decode -> encode round trips
# Any crash, sanitizer report or broken invariant fails the script and leaves the reproducer
# in .cache/fuzz/.
#
#   scripts/fuzz.sh [seconds per target]      (default 60; FUZZ_SECONDS also works)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-${FUZZ_SECONDS:-60}}"
out=.cache/fuzz
mkdir -p "$out"
command -v clang++ >/dev/null || { echo "fuzz: clang++ is required" >&2; exit 1; }
flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
nl_flags=($(pkg-config --cflags --libs libnl-genl-3.0))

echo "=== building the fuzz targets"
clang++ "${flags[@]}" fuzz/conn_parser_fuzz.cc native/conn_parser.cc -o "$out/conn_parser_fuzz"
clang++ "${flags[@]}" fuzz/codec_fuzz.cc native/ipvs_codec.cc "${nl_flags[@]}" -o "$out/codec_fuzz"
clang++ "${flags[@]}" fuzz/netlink_ack_fuzz.cc native/netlink_ack.cc -o "$out/netlink_ack_fuzz"
clang++ "${flags[@]}" fuzz/records_fuzz.cc native/records.cc native/ipvs_codec.cc "${nl_flags[@]}" -o "$out/records_fuzz"
clang++ "${flags[@]}" fuzz/probe_codec_fuzz.cc native/probe_codec.cc -o "$out/probe_codec_fuzz"

clean=0
run_target() {  # name, seed corpus, max input length
  local name="$1" seeds="$2" max_len="$3" work="$out/corpus-$1"
  mkdir -p "$work"
  echo "=== fuzzing $name for ${seconds}s"
  # New inputs go to the working corpus under .cache; the seeds in fuzz/ stay small.
  local status
  set +e
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    "$out/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
      -print_final_stats=1 -artifact_prefix="$out/" "$work" $seeds 2>&1 \
    | grep -E '^(Done|INFO: Seed|stat::number_of_executed_units|==[0-9]+==|SUMMARY|    #|.*(ERROR|WARNING|runtime error|round trip))'
  status=${PIPESTATUS[0]}
  set -e
  [ "$status" = 0 ] || echo "fuzz: $name failed (exit $status); reproducer in $out/" >&2
  [ "$status" = 0 ] && clean=$((clean + 1))
  return "$status"
}

run_target conn_parser_fuzz fuzz/corpus 16384
run_target codec_fuzz "" 4096
run_target netlink_ack_fuzz "" 4096
run_target records_fuzz "" 1024
run_target probe_codec_fuzz "" 1024
echo "fuzz: $clean targets ran clean for ${seconds}s each"
