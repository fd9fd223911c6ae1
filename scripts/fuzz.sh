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
# in .cache/fuzz/. Each target is single-threaded: FUZZ_JOBS of them (default: the CPU count)
# build and run side by side, each still for the whole time given, on a core of its own.
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

jobs="${FUZZ_JOBS:-$(nproc)}"
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1

# Runs "$@" in the background once fewer than $jobs are running.
throttle() {
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  "$@" &
}

echo "=== building the fuzz targets"
build() {  # name, sources...
  local name="$1"; shift
  clang++ "${flags[@]}" "$@" -o "$out/$name" 2> "$out/$name.build.log" || { cat "$out/$name.build.log" >&2; return 1; }
}
targets=(conn_parser_fuzz codec_fuzz netlink_ack_fuzz records_fuzz probe_codec_fuzz)
for name in "${targets[@]}"; do rm -f "$out/$name"; done
throttle build conn_parser_fuzz fuzz/conn_parser_fuzz.cc native/conn_parser.cc
throttle build codec_fuzz fuzz/codec_fuzz.cc native/ipvs_codec.cc "${nl_flags[@]}"
throttle build netlink_ack_fuzz fuzz/netlink_ack_fuzz.cc native/netlink_ack.cc
throttle build records_fuzz fuzz/records_fuzz.cc native/records.cc native/ipvs_codec.cc "${nl_flags[@]}"
throttle build probe_codec_fuzz fuzz/probe_codec_fuzz.cc native/probe_codec.cc
wait
for name in "${targets[@]}"; do
  [ -x "$out/$name" ] || { echo "fuzz: $name did not build" >&2; exit 1; }
done

run_target() {  # name, seed corpus, max input length; output to $out/<name>.log, exit status to $out/<name>.status
  local name="$1" seeds="$2" max_len="$3" work="$out/corpus-$1"
  mkdir -p "$work"
  # New inputs go to the working corpus under .cache; the seeds in fuzz/ stay small.
  local status
  set +e
  {
    echo "=== fuzzing $name for ${seconds}s"
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
      "$out/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
        -print_final_stats=1 -artifact_prefix="$out/" "$work" $seeds 2>&1 \
      | grep -E '^(Done|INFO: Seed|stat::number_of_executed_units|==[0-9]+==|SUMMARY|    #|.*(ERROR|WARNING|runtime error|round trip))'
    status=${PIPESTATUS[0]}
    [ "$status" = 0 ] || echo "fuzz: $name failed (exit $status); reproducer in $out/"
  } > "$out/$name.log" 2>&1
  echo "$status" > "$out/$name.status"
}

for name in "${targets[@]}"; do rm -f "$out/$name.status"; done
throttle run_target conn_parser_fuzz fuzz/corpus 16384
throttle run_target codec_fuzz "" 4096
throttle run_target netlink_ack_fuzz "" 4096
throttle run_target records_fuzz "" 1024
throttle run_target probe_codec_fuzz "" 1024
wait

clean=0 failed=0
for name in "${targets[@]}"; do
  cat "$out/$name.log"
  if [ "$(cat "$out/$name.status" 2>/dev/null)" = 0 ]; then clean=$((clean + 1)); else failed=1; fi
done
[ "$failed" = 0 ] || { echo "fuzz: $((${#targets[@]} - clean)) of ${#targets[@]} targets failed" >&2; exit 1; }
echo "fuzz: $clean targets ran clean for ${seconds}s each"
