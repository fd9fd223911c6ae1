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
// keepalived, ...) use the regular build or none.
if (process.env.IPVS_ASAN === '1') {
  const asanDir = process.env.IPVS_NETLINK_PREBUILD ?? '';
  nativeAddon();
  if (!asanDir || !readFileSync('/proc/self/maps', 'utf8').includes(`${asanDir}/build/Release/ipvs_netlink.node`)) {
    throw new Error(`IPVS_ASAN=1 but the addon loaded is not the ASan build in ${asanDir}`);
  }
  delete process.env.LD_PRELOAD;
  delete process.env.IPVS_NETLINK_PREBUILD;
}
