#!/usr/bin/env bash
# Fetch Debian kernels that ship IPVS modules and build a small initramfs for each.
# Nothing is installed on the host: packages are downloaded and unpacked into the cache.
#
#   scripts/vm/kernels.sh [6.1|6.17 ...]      (default: both)
#
# Result per kernel, in $IPVS_VM_CACHE/<series>/: vmlinuz, initramfs.gz, release (the uname -r)
# and recipe (a hash of this script and init.sh: a change rebuilds the initramfs). The
# downloaded .deb stays in $IPVS_VM_CACHE/debs/, so a rebuild does not download again.
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
  "$tool" -q -o APT::Sandbox::User=root -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" \
    -o Dir::State::status=/var/lib/dpkg/status "$@"
}

debian_mirror() {
  local uri
  uri=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$uri" ] || uri=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

download_deb() {  # series -> path of the .deb, downloaded into $IPVS_VM_CACHE/debs/<series> once
  local series="$1" work="$2" pkg dir="$IPVS_VM_CACHE/debs/$series" deb
  for deb in "$dir"/linux-image-*.deb; do [ -f "$deb" ] && { log "kernel $series: using the downloaded $(basename "$deb")"; echo "$deb"; return; }; done
  mkdir -p "$work" "$dir"
  local apt_dir="$work/apt" suite=""
  case "$series" in
    6.1)
      # The host's own lists when it is bookworm; otherwise a private bookworm list.
      pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-6\.1\.0-/ {print $2; exit}' || true)
      [ -n "$pkg" ] || suite=bookworm
      ;;
    6.17) suite=trixie-backports ;;
    *) die "unknown kernel series '$series' (known: 6.1 6.17)" ;;
  esac
  if [ -n "$suite" ]; then
    [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] \
      || die "apt needs Debian's archive keys to fetch the kernel: install the debian-archive-keyring package"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) $suite main" > "$apt_dir/sources.list"
    log "kernel $series: reading the package list of Debian $suite"
    apt_private apt-get "$apt_dir" update >/dev/null || die "apt-get update of Debian $suite failed"
    local pattern='^linux-image-6\.17\.[0-9]+\+deb13-amd64$'
    [ "$series" = 6.1 ] && pattern='^linux-image-6\.1\.0-[0-9]+-amd64$'
    pkg=$(apt_private apt-cache "$apt_dir" pkgnames "linux-image-$series." | grep -E "$pattern" | sort -V | tail -n1)
    [ -n "$pkg" ] || die "no kernel package matching $pattern in Debian $suite"
    log "kernel $series: downloading $pkg"
    (cd "$dir" && apt_private apt-get "$apt_dir" download "$pkg" >&2) || die "apt-get download $pkg failed"
  else
    log "kernel $series: downloading $pkg"
    (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || die "apt-get download $pkg failed"
  fi
  for deb in "$dir"/linux-image-*.deb; do [ -f "$deb" ] && { echo "$deb"; return; }; done
  die "the download of $pkg left no .deb"
}

build_kernel() {
  local series="$1"
  local out="$IPVS_VM_CACHE/$series"
  local recipe; recipe=$(cat "$here/init.sh" "$here/kernels.sh" | sha256sum | cut -c1-16)
  if [ -f "$out/initramfs.gz" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/release" ] \
     && [ "$(cat "$out/recipe" 2>/dev/null)" = "$recipe" ]; then
    log "kernel $series: cached ($(cat "$out/release"))"
    return
  fi
  local work="$IPVS_VM_CACHE/work-$series"
  rm -rf "$work" && mkdir -p "$work"
  log "kernel $series: preparing (first run for this kernel, or the VM scripts changed) in $IPVS_VM_CACHE"
  local deb; deb=$(download_deb "$series" "$work/deb")
  log "kernel $series: unpacking $(basename "$deb")"
  dpkg-deb -x "$deb" "$work/pkg"
  local moddir="" d
  for d in "$work"/pkg/usr/lib/modules/* "$work"/pkg/lib/modules/*; do [ -d "$d" ] && moddir="$d"; done
  [ -n "$moddir" ] || die "no module directory in $deb"
  local release; release=$(basename "$moddir")

  # A module tree of our own: decompressed, with modules.dep made by depmod.
  log "kernel $series: decompressing modules ($release)"
  local modroot="$work/modroot"
  mkdir -p "$modroot/lib/modules"
  cp -a "$moddir" "$modroot/lib/modules/$release"
  find "$modroot/lib/modules/$release" -name '*.ko.xz' -exec xz -d {} +
  depmod -b "$modroot" "$release"

  local rootfs="$work/rootfs"
  mkdir -p "$rootfs"/{bin,dev,proc,sys,mnt/host,modules}
  cp "$(command -v busybox)" "$rootfs/bin/busybox"   # must be static (Debian: busybox-static)
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
  log "kernel $series: packing the initramfs ($(wc -l < "$load_list") modules)"
  (cd "$rootfs" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out/initramfs.gz.tmp"
  cp "$work/pkg/boot/vmlinuz-$release" "$out/vmlinuz"
  echo "$release" > "$out/release"
  echo "$recipe" > "$out/recipe"
  mv "$out/initramfs.gz.tmp" "$out/initramfs.gz"
  log "kernel $series: ready ($release, $(wc -l < "$load_list") modules)"
  rm -rf "$work"
}

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=("${IPVS_VM_KERNELS[@]}")
need_commands dpkg-deb depmod modprobe cpio gzip xz busybox apt-get apt-cache sha256sum flock
mkdir -p "$IPVS_VM_CACHE"
# Several test runs may start at once: one builds, the others wait and then find it cached.
exec {lock_fd}> "$IPVS_VM_CACHE/.kernels.lock"
flock "$lock_fd"
for k in "${wanted[@]}"; do build_kernel "$k"; done
