import { readFileSync } from 'node:fs';

import { nativeAddon } from '../../lib/native';

// Kernel tests are only meaningful inside the IPVS test VM; anywhere else they fail loudly
// instead of skipping, so a green run always means the real kernel was exercised.
if (process.env.IPVS_VM !== '1') {
  throw new Error('kernel tests run inside the IPVS test VM: use `npm test` or `npm run test:kernel`');
}
if (process.getuid?.() !== 0) {
  throw new Error('kernel tests must run as root inside the VM');
}

// Under the ASan build (scripts/test.sh) the suite must really run against it; only this
// process needs the preloaded runtime, and the commands the tests run (ip, ipvsadm, node,
// keepalived, ...) use the regular build or none. One worker runs every file there
// (vitest.kernel-asan.config.ts) and this file runs before each: the build's directory is kept
// from the first, and every file checks that the ASan build is the only one loaded.
if (process.env.IPVS_ASAN === '1') {
  const asanDirKey = Symbol.for('ipvs-netlink:asan-dir');
  const state = globalThis as Record<symbol, string | undefined>;
  state[asanDirKey] ??= process.env.IPVS_NETLINK_PREBUILD ?? '';
  const asanDir = state[asanDirKey];
  nativeAddon();
  const loaded = readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => line.endsWith('/ipvs_netlink.node'))
    .map((line) => line.slice(line.indexOf('/')));
  const expected = `${asanDir}/build/Release/ipvs_netlink.node`;
  if (!asanDir || loaded.length === 0 || loaded.some((file) => file !== expected)) {
    throw new Error(`IPVS_ASAN=1 but the addon loaded is not only the ASan build ${expected}: ${loaded.join(', ')}`);
  }
  delete process.env.LD_PRELOAD;
  delete process.env.IPVS_NETLINK_PREBUILD;
}
