# Shared settings for the VM scripts (sourced).
project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IPVS_VM_CACHE="${IPVS_VM_CACHE:-$project_root/.cache/vm}"
IPVS_VM_KERNELS=(6.1 6.17)

log() { echo "[vm] $*" >&2; }
die() { echo "[vm] error: $*" >&2; exit 1; }
need_commands() {
  local c missing=()
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] || die "missing commands: ${missing[*]} (run: sudo bash scripts/install-deps.sh)"
}
