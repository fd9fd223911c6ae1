#!/usr/bin/env bash
# The package as users get it: npm pack (prepack builds the prebuilt addon and dist/), the
# tarball's contents, publint and arethetypeswrong on the tarball, then examples/user-project
# installed from the tarball with no compiler on PATH, ESM and CJS loads, its types under
# moduleResolution node16 and bundler, and its integration test run through
# `npx ipvs-netlink sandbox -- npm test` (one VM boot; skip it with --no-sandbox).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
sandbox=1
[ "${1:-}" = --no-sandbox ] && sandbox=0
step() { echo "[package] $*"; }
fail() { echo "[package] FAILED: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ipvs-netlink-package.XXXXXX")
trap 'rm -rf "$work"' EXIT

step "npm pack (prepack: prebuild + build:ts)"
# prebuildify moves the compiled addon out of build/Release; the development build is put back.
dev_addon=build/Release/ipvs_netlink.node
[ -f "$dev_addon" ] && cp -p "$dev_addon" "$work/dev-addon.node"
set +e
tarball="$work/$(npm pack --silent --pack-destination "$work" | tail -n1)"
pack_status=$?
set -e
if [ -f "$work/dev-addon.node" ] && [ ! -f "$dev_addon" ]; then
  mkdir -p build/Release && cp -p "$work/dev-addon.node" "$dev_addon"
fi
[ "$pack_status" = 0 ] || fail "npm pack failed"
[ -f "$tarball" ] || fail "npm pack made no tarball"
contents=$(tar -tzf "$tarball")
for wanted in package/dist/index.js package/dist/index.mjs package/dist/index.d.ts \
              package/dist/testing/index.js package/dist/testing/index.mjs package/dist/testing/index.d.ts \
              package/dist/testing/peer.js package/dist/cli/main.js package/dist/cli/bin.js package/dist/cli/bundle.js package/dist/cli/bundle.cache package/dist/cli/sandbox.js \
              package/scripts/vm/run.sh package/scripts/vm/kernels.sh package/scripts/vm/init.sh package/scripts/vm/common.sh; do
  grep -qxF "$wanted" <<< "$contents" || fail "the tarball lacks $wanted"
done
prebuilt=$(grep -E '^package/prebuilds/linux-x64/.*\.node$' <<< "$contents" || true)
[ -n "$prebuilt" ] || fail "the tarball has no prebuilt addon under prebuilds/linux-x64/ (prepack runs npm run prebuild)"
if grep -qE '^package/(build|test|bench|fuzz|\.cache)/' <<< "$contents"; then fail "the tarball ships build or test files"; fi
step "tarball: $(basename "$tarball"), $(wc -l <<< "$contents") files, prebuilt $(basename "$prebuilt")"

step "publint"
npx --no-install publint run "$tarball" --strict
step "arethetypeswrong"
npx --no-install attw "$tarball"

step "install examples/user-project from the tarball, without a compiler"
app="$work/user-project"
cp -r examples/user-project "$app"
rm -rf "$app/node_modules"
nocc="$work/no-compiler"
mkdir -p "$nocc"
for tool in cc c++ gcc g++ clang clang++ make node-gyp; do
  printf '#!/bin/sh\necho "%s must not run: the package ships a prebuilt addon" >&2\nexit 1\n' "$tool" > "$nocc/$tool"
  chmod +x "$nocc/$tool"
done
(cd "$app" && PATH="$nocc:$PATH" npm install --no-audit --no-fund --prefer-offline --no-save "$tarball" >/dev/null) \
  || fail "npm install of the tarball failed"
[ ! -e "$app/node_modules/ipvs-netlink/build" ] || fail "installing compiled the addon (build/ exists) instead of using the prebuilt one"

step "ESM and CommonJS entry points, addon loaded from prebuilds/"
(cd "$app" && node --input-type=module -e "
  import { Ipvs, IpvsUnavailableError } from 'ipvs-netlink';
  import * as testing from 'ipvs-netlink/testing';
  import { createRequire } from 'node:module';
  const require = createRequire(import.meta.url);
  if (require('ipvs-netlink').Ipvs !== Ipvs) throw new Error('ESM and CJS load two copies');
  for (const name of ['withNetns', 'topology', 'veth', 'bridge', 'startTcpServer', 'startHttpServer', 'tcpClient', 'httpClient', 'skipUnlessIpvs', 'ipvsAvailable'])
    if (typeof testing[name] !== 'function' || typeof require('ipvs-netlink/testing')[name] !== 'function') throw new Error('ipvs-netlink/testing lacks ' + name);
  // Opening reaches the native addon: here it answers that the kernel has no IPVS (or opens).
  const opened = await Ipvs.open().then((h) => h.close().then(() => 'opened'), (e) => e);
  if (opened !== 'opened' && !(opened instanceof IpvsUnavailableError) && opened.code !== 'EPERM') throw opened;
  console.log('[package] ESM + CJS ok; Ipvs.open():', opened === 'opened' ? 'opened' : opened.code);
")
(cd "$app" && node -e "
  require('ipvs-netlink').Ipvs.open().catch(() => {}).finally(() => {
    const addon = process.report.getReport().sharedObjects.find((f) => f.endsWith('.node'));
    if (!addon || !addon.includes('/node_modules/ipvs-netlink/prebuilds/linux-x64/')) throw new Error('addon not loaded from prebuilds/: ' + addon);
    console.log('[package] CJS ok; addon', addon.replace(process.cwd() + '/', ''));
  });
")

step "types: tsc --noEmit with moduleResolution node16 and bundler"
(cd "$app" && npx --no-install tsc -p tsconfig.node16.json && npx --no-install tsc -p tsconfig.bundler.json)

if [ "$sandbox" = 1 ]; then
  step "the example's integration test through the sandbox: npx ipvs-netlink sandbox -- npm test"
  # The repository's prepared kernels, so this does not download them again.
  set +e
  (cd "$app" && IPVS_VM_CACHE="${IPVS_VM_CACHE:-$root/.cache/vm}" npx --no-install ipvs-netlink sandbox -- npm test) 2>&1 | tee "$work/sandbox.log"
  status=${PIPESTATUS[0]}
  set -e
  [ "$status" = 0 ] || fail "the example's test failed in the sandbox (exit $status)"
  # In the VM nothing may be skipped: a skipped integration test would be a false green.
  grep -Eq '^(# skipped|ℹ skipped) 0$' "$work/sandbox.log" || fail "the example's tests did not all run in the sandbox"
  grep -Eq '^(# pass|ℹ pass) 2$' "$work/sandbox.log" || fail "the example's two tests did not both pass in the sandbox"
fi
step "ok"
