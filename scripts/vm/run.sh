#!/usr/bin/env bash
# Run a command as root inside a VM booted on a Debian kernel with IPVS, with the host's
# files (node, node_modules, the built addon) seen read-only and the working directory
# (default: this project) read-write; the command runs in it. The one VM launcher: npm test,
# the benchmarks and `ipvs-netlink sandbox` all come through here.
#
#   scripts/vm/run.sh [--kernel 6.1|6.17] [--workdir DIR] [--env NAME=VALUE]... \
#                     [--conn-tab-bits N] [--memory MB] -- command args...
#
# Kernels are prepared on first use (scripts/vm/kernels.sh) in $IPVS_VM_CACHE (default
# .cache/vm of this project). Exits with the command's status; 100+ when the VM itself failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
source "$here/common.sh"

kernel=6.17 conn_tab_bits=12 memory=2048 timeout_s=${IPVS_VM_TIMEOUT:-1800} boot_timeout_s=${IPVS_VM_BOOT_TIMEOUT:-240} workdir="$project_root" extra_env=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel="$2"; shift 2 ;;
    --workdir) workdir="$(cd "$2" && pwd -P)" || die "no directory $2"; shift 2 ;;
    --env) [[ "$2" =~ ^[A-Za-z_][A-Za-z0-9_]*=.*$ ]] || die "--env takes NAME=VALUE, got '$2'"; extra_env+=("$2"); shift 2 ;;
    --conn-tab-bits) conn_tab_bits="$2"; shift 2 ;;
    --memory) memory="$2"; shift 2 ;;
    --) shift; break ;;
    *) die "unknown option $1" ;;
  esac
done
[ $# -gt 0 ] || die "usage: run.sh [--kernel 6.1|6.17] [--workdir DIR] [--env NAME=VALUE] [--conn-tab-bits N] [--memory MB] -- command..."
need_commands qemu-system-x86_64 timeout pkill
[ "$workdir" != / ] || die "the working directory must not be / (the host root is mounted read-only; run from a project directory)"
case "$workdir" in *,*) die "the working directory's path must not contain a comma (qemu -virtfs): $workdir" ;; esac

bash "$here/kernels.sh" "$kernel"
kdir="$IPVS_VM_CACHE/$kernel"

job=$(mktemp -d "$IPVS_VM_CACHE/job.XXXXXX")
trap 'rm -rf "$job"' EXIT
printf '%q ' "$@" > "$job/cmd"; echo >> "$job/cmd"
printf '%s' "$workdir" > "$job/workdir"
{
  echo "export PATH='$(dirname "$(command -v node)"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'"
  echo "export HOME=/tmp TERM=dumb IPVS_VM=1 IPVS_VM_KERNEL=$kernel"
  for v in CI FORCE_COLOR NO_COLOR IPVS_BENCH_SIZES; do
    [ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
  done
  for kv in "${extra_env[@]}"; do printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"; done
} > "$job/env"

boot() {
  timeout --foreground "$timeout_s" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -m "$memory" -smp 2 -nographic -no-reboot \
    -kernel "$kdir/vmlinuz" -initrd "$kdir/initramfs.gz" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 ipvs_vm.conn_tab_bits=$conn_tab_bits" \
    -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$job",mount_tag=job,security_model=none,multidevs=remap \
    -virtfs local,path="$workdir",mount_tag=work,security_model=none,multidevs=remap \
    -nic none < /dev/null \
    | sed -u -e 's/\r$//' -e 's/\x1bc/\n/g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' \
    | grep --line-buffered -v -E '^(IPVS_VM_EXIT=|SeaBIOS|Booting from ROM|$)|reboot: Power down'
  return "${PIPESTATUS[0]}"
}

# A boot takes seconds; one whose job has not started after boot_timeout_s is stuck (seen once,
# with qemu idle) and is stopped, so that it is retried rather than waiting for timeout_s.
watch_boot() {
  local deadline=$(( $(date +%s) + boot_timeout_s ))
  while [ ! -f "$job/started" ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "kernel $kernel: the command had not started ${boot_timeout_s}s after boot; stopping the VM"
      pkill -f -- "path=$job,mount_tag=job" || true
      return
    fi
    sleep 1
  done
}

# Under emulation the kernel very rarely dies or stalls in early boot, before our job starts;
# that is retried. Once the job has started its outcome is final.
for attempt in 1 2 3; do
  log "booting $(cat "$kdir/release") ($kernel): $*"
  started=$(date +%s)
  watch_boot & watcher=$!
  set +e; boot; qemu_status=$?; kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null; set -e
  elapsed=$(( $(date +%s) - started ))
  if [ -f "$job/rc" ]; then
    rc=$(cat "$job/rc")
    log "kernel $kernel: command exited $rc after ${elapsed}s in the VM"
    exit "$rc"
  fi
  [ "$qemu_status" = 124 ] && die "kernel $kernel: the VM timed out after ${timeout_s}s"
  [ -f "$job/started" ] && break
  log "kernel $kernel: the VM stopped before the command started (attempt $attempt, qemu status $qemu_status)"
done
echo "[vm] error: kernel $kernel: the VM stopped (qemu status $qemu_status) without finishing the command" >&2
exit 101
