// A host probe's stand-in for the kernel (not a test: the host has no IPVS). Preloaded with
// `node -r`, it answers the addon's IpvsHandle.open() with a handle that serves 1,000 IPv4 TCP
// services x 10 NAT real servers as packed records in the addon's layout, so that a cold
// `ipvs-netlink ipvsadm -Ln` runs its whole JavaScript path on the host: everything but the
// kernel's work. Instruction counts of the command, against `node -r` of this file with `-e 0`:
//
//   IPVS_NETLINK_PREBUILD=$PWD valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//     node -r ./bench/cli-host-fake.cjs dist/cli/bin.js ipvsadm -Ln > /dev/null
const path = require('node:path');

const { syntheticTable } = require('../scripts/synthetic-table.cjs');

const addonPath = path.join(process.env.IPVS_NETLINK_PREBUILD ?? path.join(__dirname, '..'), 'build', 'Release', 'ipvs_netlink.node');
const addon = require(addonPath);
const table = syntheticTable(addon.recordLayout, 1000, 10);
const IpvsHandle = {
  open: async () => ({
    listTable: async () => table,
    execute: async () => ({ version: 0x010201, connectionTableSize: 4096 }),
    close() {},
  }),
};
require.cache[addonPath].exports = { ...addon, IpvsHandle };
