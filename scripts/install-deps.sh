#!/usr/bin/env bash
# Installs the Debian packages the build, the VM test bed and the benchmarks need, if any is
# missing. Needs root (apt-get). Nothing else on the host is changed.
set -euo pipefail

packages=(
  build-essential python3 pkg-config libnl-3-dev libnl-genl-3-dev   # the addon
  qemu-system-x86 busybox-static cpio kmod xz-utils                # the VM test bed
  ipvsadm socat iproute2 util-linux                                 # oracles and traffic in the VM
  clang libclang-rt-14-dev                                          # libFuzzer for the parser fuzz target
  keepalived ldirectord ipset iptables nftables                     # director oracles, autoban
  prometheus chromium dnsmasq-base                                  # promtool; the status page in a real browser; a real DNS server
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[deps] all Debian packages present"
  exit 0
fi
echo "[deps] installing: ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "[deps] run as root (apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
