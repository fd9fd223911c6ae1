#!/usr/bin/env bash
# Benchmarks. Host-only ones (bench/*.host.mjs) run here; kernel ones (bench/*.bench.mjs) run
# as root in the test VM, one boot per kernel, all files in the same boot so their reference
# commands are measured in the same session. Each file prints its table and writes JSON to
# bench/results/. A new benchmark is a new bench/<name>.bench.mjs (or .host.mjs) file.
#
#   scripts/bench.sh [--host-only] [--vm-only] [--kernels "6.17 6.1"] [name-filter]
#
# Connection-table sizes per kernel: 6.17 -> "100000 1000000", 6.1 -> "100000"; override with
# IPVS_BENCH_CONN_SIZES (every kernel). IPVS_BENCH_ROUNDS sets the rounds (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

run_host=1 run_vm=1 kernels="6.17 6.1" filter=""
while [ $# -gt 0 ]; do
  case "$1" in
    --host-only) run_vm=0; shift ;;
    --vm-only) run_host=0; shift ;;
    --kernels) kernels="$2"; shift 2 ;;
    *) filter="$1"; shift ;;
  esac
done

[ -f build/Release/ipvs_netlink.node ] || npm run --silent build:native
npm run --silent build:ts
mkdir -p bench/results

matching() {  # pattern -> bench files whose name contains $filter
  local f
  for f in $1; do
    [ -e "$f" ] || continue
    case "$(basename "$f")" in *"$filter"*) echo "$f" ;; esac
  done
}

if [ "$run_host" = 1 ]; then
  for f in $(matching 'bench/*.host.mjs'); do
    echo "=== $f (host)"
    node "$f"
  done
fi

failed=0
if [ "$run_vm" = 1 ]; then
  files=$(matching 'bench/*.bench.mjs' | tr '\n' ' ')
  if [ -z "$files" ]; then echo "no VM benchmark matches '$filter'"; exit 0; fi
  for kernel in $kernels; do
    case "$kernel" in
      6.1) default_sizes="100000" ;;
      *) default_sizes="100000 1000000" ;;
    esac
    echo "=== VM benchmarks on Linux $kernel: $files(host load before: $(cut -d' ' -f1-3 /proc/loadavg))"
    # conn_tab_bits=20: a hash table sized for a million connections, as on a busy director.
    # Every file runs even if one fails; the script fails at the end.
    IPVS_VM_TIMEOUT="${IPVS_VM_TIMEOUT:-5400}" \
      scripts/vm/run.sh --kernel "$kernel" --conn-tab-bits 20 --memory 4096 -- \
      env IPVS_BENCH_ROUNDS="${IPVS_BENCH_ROUNDS:-3}" IPVS_BENCH_CONN_SIZES="${IPVS_BENCH_CONN_SIZES:-$default_sizes}" \
      sh -c 'status=0; for f in "$@"; do echo "--- $f"; node "$f" || { echo "--- $f FAILED"; status=1; }; done; exit $status' \
      bench $files || failed=1
    echo "=== host load after: $(cut -d' ' -f1-3 /proc/loadavg) (other VMs on this host skew the numbers)"
  done
fi
exit $failed
