#!/usr/bin/env bash
# The whole test suite: unit tests and the fuzz targets (bounded) on the host, the host-side
# integration tests (the sandbox command) and the package check (scripts/check-package.sh),
# then the kernel suite inside the VM on each kernel. Fails if any suite fails or runs no test, or if a VM
# cannot boot; kernel tests are never skipped.
#
# Every kernel test runs on both kernels, one VM boot each, one after the other
# (IPVS_TEST_PARALLEL=1: side by side, which on two host cores saves little and loads both):
# on 6.1 against an ASan+UBSan build of the addon (scripts/asan-build.sh), on 6.17 against the
# release build the package ships. Any sanitizer report fails the run. --asan runs every
# selected kernel against the ASan build (`npm run test:asan`: only 6.1, only that);
# --asan-kernels "" runs none under ASan. A kernel suite's VM gets IPVS_VM_TIMEOUT seconds
# (default here 3600).
#
#   scripts/test.sh [--kernel-only] [--unit-only] [--asan] [--asan-kernels "6.1"] [--kernels "6.1 6.17"]
#                   [vitest filters...]
set -euo pipefail
cd "$(dirname "$0")/.."
export VITE_CONFIG_NATIVE_IGNORE_WARNING=true
source scripts/vm/common.sh

run_unit=1 run_kernel=1 asan_kernels=6.1 kernels="${IPVS_VM_KERNELS[*]}" filters=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel-only) run_unit=0; shift ;;
    --unit-only) run_kernel=0; shift ;;
    --asan) asan_kernels='*'; shift ;;
    --asan-kernels) asan_kernels="$2"; shift 2 ;;
    --kernels) kernels="$2"; shift 2 ;;
    *) filters+=("$1"); shift ;;
  esac
done

[ -f build/Release/ipvs_netlink.node ] || npm run --silent build:native
npm run --silent build:ts

results="${IPVS_TEST_RESULTS:-$IPVS_VM_CACHE/results}"
rm -rf "$results" && mkdir -p "$results"
declare -a summary=()
failed=0

record() {  # suite-name json-file status seconds
  local counts
  counts=$(node -e '
    const fs = require("fs");
    try {
      const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
      console.log(`${r.numPassedTests} ${r.numFailedTests} ${r.numPendingTests + r.numTodoTests}`);
    } catch { console.log("0 0 0"); }' "$2")
  read -r passed failed_tests skipped <<< "$counts"
  summary+=("$(printf '%-16s %4s passed %4s failed %4s skipped  exit %-3s %5ss' "$1" "$passed" "$failed_tests" "$skipped" "$3" "$4")")
  total_passed=$(( ${total_passed:-0} + passed ))
  total_failed=$(( ${total_failed:-0} + failed_tests ))
  total_skipped=$(( ${total_skipped:-0} + skipped ))
  if [ "$3" != 0 ] || [ "$failed_tests" != 0 ] || [ "$passed" = 0 ]; then failed=1; fi
  if [[ "$1" == kernel* ]] && [ "$skipped" != 0 ]; then
    echo "error: $1 skipped $skipped test(s); kernel tests must run" >&2
    failed=1
  fi
}

if [ "$run_unit" = 1 ]; then
  echo "=== unit tests (host, no IPVS)"
  start=$(date +%s); set +e
  npx vitest run --config vitest.unit.config.ts --reporter=default --reporter=json \
    --outputFile.json="$results/unit.json" "${filters[@]}"
  status=$?; set -e
  record unit "$results/unit.json" "$status" $(( $(date +%s) - start ))
fi

if [ "$run_unit" = 1 ]; then
  echo "=== fuzz targets (host, bounded)"
  start=$(date +%s); set +e
  bash scripts/fuzz.sh "${IPVS_FUZZ_SECONDS:-30}" | tee "$results/fuzz.log"
  status=${PIPESTATUS[0]}; set -e
  # Each target that ran clean counts as one passed test (fuzz.sh counts them).
  fuzz_passed=$(sed -n 's/^fuzz: \([0-9][0-9]*\) targets ran clean.*/\1/p' "$results/fuzz.log")
  if [ "$status" = 0 ] && [ -n "$fuzz_passed" ]; then fuzz_failed=0; else fuzz_passed=0 fuzz_failed=1; failed=1; fi
  summary+=("$(printf '%-16s %4s passed %4s failed %4s skipped  exit %-3s %5ss' fuzz "$fuzz_passed" "$fuzz_failed" 0 "$status" $(( $(date +%s) - start )))")
  total_passed=$(( ${total_passed:-0} + fuzz_passed ))
  total_failed=$(( ${total_failed:-0} + fuzz_failed ))
fi

if [ "$run_unit" = 1 ]; then
  echo "=== host integration: the sandbox command boots the VM"
  start=$(date +%s); set +e
  npx vitest run --config vitest.host.config.ts --reporter=default --reporter=json \
    --outputFile.json="$results/host.json"
  status=$?; set -e
  record host "$results/host.json" "$status" $(( $(date +%s) - start ))

  echo "=== package: npm pack, publint, attw, the example project from the tarball (in the sandbox)"
  start=$(date +%s); set +e
  bash scripts/check-package.sh
  status=$?; set -e
  if [ "$status" = 0 ]; then package_passed=1 package_failed=0; else package_passed=0 package_failed=1; failed=1; fi
  summary+=("$(printf '%-16s %4s passed %4s failed %4s skipped  exit %-3s %5ss' package "$package_passed" "$package_failed" 0 "$status" $(( $(date +%s) - start )))")
  total_passed=$(( ${total_passed:-0} + package_passed ))
  total_failed=$(( ${total_failed:-0} + package_failed ))
fi

under_asan() {  # kernel
  [ "$asan_kernels" = '*' ] || [[ " $asan_kernels " == *" $1 "* ]]
}

kernel_suite() {  # kernel -> runs its suite in one VM boot; writes $results/<kernel>.{name,json,status,seconds}
  local kernel="$1" name json status start=$(date +%s) asan_dir reports
  set +e
  if under_asan "$kernel"; then
    name="kernel $kernel asan" json="$results/kernel-$kernel-asan.json"
    asan_dir="$(realpath -m "${IPVS_ASAN_DIR:-.cache/asan}")" reports="$asan_dir/reports"
    # node is not instrumented: the test workers preload the runtime (vitest.kernel-asan.config.ts),
    # and leak checking is off because node itself does not free everything at exit (the soak
    # test measures growth instead). test/kernel/setup.ts checks the ASan build is the one
    # loaded and keeps LD_PRELOAD from the commands the tests run. Reports go to files, so
    # none is lost in a worker.
    scripts/vm/run.sh --kernel "$kernel" -- env \
      IPVS_NETLINK_PREBUILD="$asan_dir" IPVS_ASAN_PRELOAD="$(g++ -print-file-name=libasan.so)" \
      ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:malloc_context_size=8:log_path=$reports/asan" \
      UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan" \
      node node_modules/vitest/vitest.mjs run \
      --config vitest.kernel-asan.config.ts --reporter=default --reporter=json \
      --outputFile.json="$json" "${filters[@]}"
    status=$?
  else
    name="kernel $kernel" json="$results/kernel-$kernel.json"
    scripts/vm/run.sh --kernel "$kernel" -- node node_modules/vitest/vitest.mjs run \
      --config vitest.kernel.config.ts --reporter=default --reporter=json \
      --outputFile.json="$json" "${filters[@]}"
    status=$?
  fi
  echo "$name" > "$results/$kernel.name"; echo "$json" > "$results/$kernel.json-path"
  echo "$status" > "$results/$kernel.status"; echo $(( $(date +%s) - start )) > "$results/$kernel.seconds"
}

if [ "$run_kernel" = 1 ]; then
  export IPVS_VM_TIMEOUT="${IPVS_VM_TIMEOUT:-3600}"
  asan_dir="$(realpath -m "${IPVS_ASAN_DIR:-.cache/asan}")"
  asan_ready=1
  for kernel in $kernels; do
    if under_asan "$kernel"; then
      rm -rf "$asan_dir/reports"
      IPVS_ASAN_DIR="$asan_dir" bash scripts/asan-build.sh && mkdir -p "$asan_dir/reports" || asan_ready=0
      break
    fi
  done
  # With IPVS_TEST_PARALLEL=1 the kernels' VMs run side by side, each line tagged with its kernel.
  pids=()
  for kernel in $kernels; do
    if under_asan "$kernel" && [ "$asan_ready" != 1 ]; then
      echo "kernel $kernel asan" > "$results/$kernel.name"; echo /nonexistent > "$results/$kernel.json-path"
      echo 1 > "$results/$kernel.status"; echo 0 > "$results/$kernel.seconds"
      continue
    fi
    echo "=== kernel tests in the VM: Linux $kernel, $(under_asan "$kernel" && echo 'ASan+UBSan' || echo release) build of the addon"
    set +e
    if [ "${IPVS_TEST_PARALLEL:-0}" != 1 ]; then
      kernel_suite "$kernel"
    else
      kernel_suite "$kernel" 2>&1 | sed -u "s/^/[$kernel] /" &
      pids+=($!)
    fi
    set -e
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  for kernel in $kernels; do
    name=$(cat "$results/$kernel.name")
    record "$name" "$(cat "$results/$kernel.json-path")" "$(cat "$results/$kernel.status")" "$(cat "$results/$kernel.seconds")"
    reports="$asan_dir/reports"
    if under_asan "$kernel" && compgen -G "$reports/*" > /dev/null; then
      echo "error: $name: sanitizer reports:" >&2
      cat "$reports"/* >&2
      summary+=("$name: $(ls "$reports" | wc -l) sanitizer report(s), printed above")
      failed=1
    fi
  done
fi

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
echo "total: ${total_passed:-0} passed, ${total_failed:-0} failed, ${total_skipped:-0} skipped"
if [ "$failed" != 0 ]; then
  echo "FAILED: a suite failed, ran no test, or its VM did not boot" >&2
  exit 1
fi
