// A host probe's stand-in for the kernel (not a test: the host has no IPVS). Preloaded with
// `node -r`, it answers the addon's IpvsHandle.open() with a handle that serves 1,000 IPv4 TCP
// services x 10 NAT real servers as packed records in the addon's layout (and listTableIn, the
// head start's listing, with the same table in eight parts), so that a cold
// `ipvs-netlink ipvsadm -Ln` runs its whole JavaScript path on the host: everything but the
// kernel's work. Instruction counts of the command, against `node -r` of this file with `-e 0`:
//
//   IPVS_NETLINK_PREBUILD=$PWD valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//     node -r ./bench/cli-host-fake.cjs dist/cli/bin.js ipvsadm -Ln > /dev/null
const path = require('node:path');

const { syntheticTable } = require('../scripts/synthetic-table.cjs');

const addonPath = path.join(process.env.IPVS_NETLINK_PREBUILD ?? path.join(__dirname, '..'), 'build', 'Release', 'ipvs_netlink.node');
const addon = require(addonPath);
// In the kernel's hash order rather than sorted: services 0, 7, 14, ... (mod 1,000).
const table = shuffled(syntheticTable(addon.recordLayout, 1000, 10), addon.recordLayout);

function shuffled(sorted, { service: S, destination: D }) {
  const count = sorted.services.length / S.words;
  const perService = sorted.destinations.length / D.words / count;
  const services = new Uint32Array(sorted.services.length);
  const destinations = new Uint32Array(sorted.destinations.length);
  for (let i = 0; i < count; i++) {
    const s = (i * 7) % count;
    services.set(sorted.services.subarray(s * S.words, (s + 1) * S.words), i * S.words);
    const size = perService * D.words;
    destinations.set(sorted.destinations.subarray(s * size, (s + 1) * size), i * size);
  }
  return { services, destinations, strings: sorted.strings };
}

/** The table in parts of 125 services, as the addon hands a listing over with onPart. */
function parts({ service: S, destination: D }) {
  const out = [];
  const count = table.services.length / S.words;
  const perService = table.destinations.length / D.words / count;
  for (let s = 0; s < count; s += 125) {
    const end = Math.min(count, s + 125);
    out.push({
      services: table.services.slice(s * S.words, end * S.words),
      destinations: table.destinations.slice(s * perService * D.words, end * perService * D.words),
      strings: table.strings,
    });
  }
  return out;
}
const IpvsHandle = {
  open: async () => ({
    listTable: async () => table,
    execute: async () => ({ version: 0x010201, connectionTableSize: 4096 }),
    close() {},
  }),
};
// The head start's listing: every part but the last through onPart, a little apart.
const listTableIn = (netns, onPart) => {
  if (!onPart) return Promise.resolve(table);
  const all = parts(addon.recordLayout);
  return new Promise((resolve) => {
    const next = () => {
      const part = all.shift();
      if (all.length === 0) return resolve(part);
      onPart(part);
      setTimeout(next, 1);
    };
    setTimeout(next, 1);
  });
};
require.cache[addonPath].exports = { ...addon, IpvsHandle, listTableIn };
