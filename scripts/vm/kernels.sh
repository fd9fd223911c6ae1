#!/usr/bin/env bash
# Fetch Debian kernels that ship IPVS modules and build a small initramfs for each.
# Nothing is installed on the host: packages are downloaded and unpacked into the cache.
#
#   scripts/vm/kernels.sh [6.1|6.17 ...]      (default: both)
#
# Result per kernel, in $IPVS_VM_CACHE/<series>/: vmlinuz, initramfs.gz, release (the uname -r).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
source "$here/common.sh"

# Modules the guest loads, in this order (each with its dependencies). Missing ones are an
# error unless listed as optional: kernels rename helpers (crc32c_generic became
# crc32c-cryptoapi in 6.14; libcrc32c disappeared) and build some drivers in.
required_modules=(
  9pnet_virtio 9p veth dummy ipip bridge
  nf_conntrack nf_defrag_ipv4 nf_defrag_ipv6
  ip_vs
  ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh
  ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh
  ip_vs_pe_sip ip_vs_ftp
)
optional_modules=(virtio_pci crc32c_generic crc32c-cryptoapi libcrc32c ip_vs_twos
  # firewalling for autoban (ipset + iptables-nft), tunnels for the TUN data-plane tests, netem for faults
  ip_set ip_set_hash_ip ip_set_hash_net xt_set nf_tables nft_compat xt_tcpudp xt_conntrack
  fou ip_gre ip6_tunnel sch_netem)

apt_private() {  # apt-get/apt-cache with a private source list and state; the host's apt is untouched
  local tool="$1" dir="$2"; shift 2
  "$tool" -q -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" \
    -o Dir::State::status=/var/lib/dpkg/status "$@"
}

debian_mirror() {
  local uri
  uri=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$uri" ] || uri=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

download_deb() {  # series -> path of the downloaded .deb
  local series="$1" work="$2" pkg
  mkdir -p "$work"
  case "$series" in
    6.1)
      pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-6\.1/ {print $2; exit}')
      if [ -z "$pkg" ]; then apt-get update -q >/dev/null; pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6\.1/ {print $2; exit}'); fi
      [ -n "$pkg" ] || die "cannot find the bookworm kernel package (linux-image-amd64 has no 6.1 dependency)"
      (cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
      ;;
    6.17)
      local apt_dir="$work/apt"
      mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
      echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) trixie-backports main" > "$apt_dir/sources.list"
      apt_private apt-get "$apt_dir" update >/dev/null || die "apt-get update of trixie-backports failed"
      pkg=$(apt_private apt-cache "$apt_dir" pkgnames linux-image-6.17. | grep -E '^linux-image-6\.17\.[0-9]+\+deb13-amd64$' | sort -V | tail -n1)
      [ -n "$pkg" ] || die "no linux-image-6.17.*+deb13-amd64 in trixie-backports"
      (cd "$work" && apt_private apt-get "$apt_dir" download "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
      ;;
    *) die "unknown kernel series '$series' (known: 6.1 6.17)" ;;
  esac
  local deb
  for deb in "$work"/linux-image-*.deb; do echo "$deb"; return; done
  die "the download of $pkg left no .deb"
}

build_kernel() {
  local series="$1"
  local out="$IPVS_VM_CACHE/$series"
  if [ -f "$out/initramfs.gz" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/release" ] \
     && [ "$out/initramfs.gz" -nt "$here/init.sh" ] && [ "$out/initramfs.gz" -nt "$here/kernels.sh" ]; then
    log "kernel $series: cached ($(cat "$out/release"))"
    return
  fi
  local work="$IPVS_VM_CACHE/work-$series"
  rm -rf "$work" && mkdir -p "$work"
  log "kernel $series: downloading"
  local deb; deb=$(download_deb "$series" "$work/deb")
  dpkg-deb -x "$deb" "$work/pkg"
  local moddir="" d
  for d in "$work"/pkg/usr/lib/modules/* "$work"/pkg/lib/modules/*; do [ -d "$d" ] && moddir="$d"; done
  [ -n "$moddir" ] || die "no module directory in $deb"
  local release; release=$(basename "$moddir")

  # A module tree of our own: decompressed, with modules.dep made by depmod.
  local modroot="$work/modroot"
  mkdir -p "$modroot/lib/modules"
  cp -a "$moddir" "$modroot/lib/modules/$release"
  find "$modroot/lib/modules/$release" -name '*.ko.xz' -exec xz -d {} +
  depmod -b "$modroot" "$release"

  local rootfs="$work/rootfs"
  mkdir -p "$rootfs"/{bin,dev,proc,sys,mnt/host,modules}
  cp /bin/busybox "$rootfs/bin/busybox"
  cp "$here/init.sh" "$rootfs/init"
  chmod +x "$rootfs/init"

  local load_list="$rootfs/modules/load" seen="$work/seen"
  : > "$load_list"; : > "$seen"
  add_module() {  # name, required? -> appends the module and its dependencies, once each
    local deps
    if ! deps=$(modprobe -d "$modroot" -S "$release" --show-depends "$1" 2>/dev/null); then
      [ "$2" = required ] && die "kernel $series ($release) has no module '$1'"
      return 0
    fi
    while read -r kind path params; do
      [ "$kind" = insmod ] || continue        # 'builtin X' lines need nothing
      grep -qxF "$path" "$seen" && continue
      echo "$path" >> "$seen"
      cp "$path" "$rootfs/modules/"
      basename "$path" >> "$load_list"
    done <<< "$deps"
  }
  local m
  for m in "${optional_modules[@]}"; do [ "$m" = ip_vs_twos ] || add_module "$m" optional; done
  for m in "${required_modules[@]}"; do add_module "$m" required; done
  add_module ip_vs_twos optional

  mkdir -p "$out"
  (cd "$rootfs" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out/initramfs.gz.tmp"
  cp "$work/pkg/boot/vmlinuz-$release" "$out/vmlinuz"
  echo "$release" > "$out/release"
  mv "$out/initramfs.gz.tmp" "$out/initramfs.gz"
  log "kernel $series: ready ($release, $(wc -l < "$load_list") modules)"
  rm -rf "$work"
}

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=("${IPVS_VM_KERNELS[@]}")
need_commands dpkg-deb depmod modprobe cpio gzip xz busybox apt-get
mkdir -p "$IPVS_VM_CACHE"
# Several test runs may start at once: one builds, the others wait and then find it cached.
exec {lock_fd}> "$IPVS_VM_CACHE/.kernels.lock"
flock "$lock_fd"
for k in "${wanted[@]}"; do build_kernel "$k"; done
