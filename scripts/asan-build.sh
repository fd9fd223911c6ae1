#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer into .cache/asan, or
# $IPVS_ASAN_DIR (the regular build in build/ is left alone). Load it with
#   IPVS_NETLINK_PREBUILD=$PWD/.cache/asan LD_PRELOAD=$(g++ -print-file-name=libasan.so) node ...
# (node-gyp-build looks in $IPVS_NETLINK_PREBUILD/build/Release; node itself is not built with
# ASan, so the runtime has to be preloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${IPVS_ASAN_DIR:-.cache/asan}"
addon="$out/build/Release/ipvs_netlink.node"
# Built already from these very sources (and this script): nothing to do.
if [ -f "$addon" ] && [ "$addon" -nt "$0" ] && cmp -s binding.gyp "$out/binding.gyp" && diff -rq native "$out/native" >/dev/null 2>&1; then
  echo "$addon"
  exit 0
fi
mkdir -p "$out"
cp binding.gyp "$out/"
rm -rf "$out/native" && cp -r native "$out/native"
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
(cd "$out" && CXXFLAGS="$sanitize" CFLAGS="$sanitize" LDFLAGS="-fsanitize=address,undefined" \
  node "$OLDPWD/node_modules/node-gyp/bin/node-gyp.js" rebuild --nodedir="${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || echo /usr)}" --silent >/dev/null)
# Not `ldd | grep -q`: grep -q exits at the first match, and under pipefail an ldd still writing
# then fails the pipeline (SIGPIPE), so a loaded host could report a good build as bad.
libraries=$(ldd "$addon")
grep -q libasan <<<"$libraries" || { echo "asan-build: the addon is not linked with ASan" >&2; exit 1; }
echo "$addon"
