#!/usr/bin/env bash
# Run a command as root inside a VM booted on a Debian kernel with IPVS, with the host's
# files (node, node_modules, the built addon) seen read-only and the project read-write.
#
#   scripts/vm/run.sh [--kernel 6.1|6.17] [--conn-tab-bits N] [--memory MB] -- command args...
#
# Exits with the command's status; 100+ when the VM itself failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
source "$here/common.sh"

kernel=6.17 conn_tab_bits=12 memory=2048 timeout_s=${IPVS_VM_TIMEOUT:-1800}
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel="$2"; shift 2 ;;
    --conn-tab-bits) conn_tab_bits="$2"; shift 2 ;;
    --memory) memory="$2"; shift 2 ;;
    --) shift; break ;;
    *) die "unknown option $1" ;;
  esac
done
[ $# -gt 0 ] || die "usage: run.sh [--kernel 6.1|6.17] [--conn-tab-bits N] -- command..."
need_commands qemu-system-x86_64 timeout
case "$project_root" in *[[:space:]]*) die "the project path must not contain spaces: $project_root" ;; esac

"$here/kernels.sh" "$kernel"
kdir="$IPVS_VM_CACHE/$kernel"

job=$(mktemp -d "$IPVS_VM_CACHE/job.XXXXXX")
trap 'rm -rf "$job"' EXIT
printf '%q ' "$@" > "$job/cmd"; echo >> "$job/cmd"
{
  echo "export PATH='$(dirname "$(command -v node)"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'"
  echo "export HOME=/tmp TERM=dumb IPVS_VM=1 IPVS_VM_KERNEL=$kernel"
  for v in CI FORCE_COLOR NO_COLOR IPVS_BENCH_SIZES IPVS_TEST_FILTER; do
    [ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
  done
} > "$job/env"

boot() {
  timeout --foreground "$timeout_s" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -m "$memory" -smp 2 -nographic -no-reboot \
    -kernel "$kdir/vmlinuz" -initrd "$kdir/initramfs.gz" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 ipvs_vm.conn_tab_bits=$conn_tab_bits ipvs_vm.project=$project_root ipvs_vm.job=$job" \
    -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$project_root",mount_tag=project,security_model=none,multidevs=remap \
    -nic none < /dev/null \
    | sed -u -e 's/\r$//' -e 's/\x1bc/\n/g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' \
    | grep --line-buffered -v -E '^(IPVS_VM_EXIT=|SeaBIOS|Booting from ROM|$)|reboot: Power down'
  return "${PIPESTATUS[0]}"
}

# Under emulation the kernel very rarely dies in early boot, before our job starts; that is
# retried. Once the job has started its outcome is final.
for attempt in 1 2 3; do
  log "booting $(cat "$kdir/release") ($kernel): $*"
  started=$(date +%s)
  set +e; boot; qemu_status=$?; set -e
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
