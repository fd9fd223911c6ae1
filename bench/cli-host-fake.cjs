// A host probe's stand-in for the kernel (not a test: the host has no IPVS). Preloaded with
// `node -r`, it answers the addon's IpvsHandle.open() with a handle that serves 1,000 IPv4 TCP
// services x 10 NAT real servers as packed records in the addon's layout, so that a cold
// `ipvs-netlink ipvsadm -Ln` runs its whole JavaScript path on the host: everything but the
// kernel's work. Instruction counts of the command, against `node -r` of this file with `-e 0`:
//
//   IPVS_NETLINK_PREBUILD=$PWD valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//     node -r ./bench/cli-host-fake.cjs dist/cli/bin.js ipvsadm -Ln > /dev/null
const path = require('node:path');

const addonPath = path.join(process.env.IPVS_NETLINK_PREBUILD ?? path.join(__dirname, '..'), 'build', 'Release', 'ipvs_netlink.node');
const addon = require(addonPath);
const { service: S, destination: D } = addon.recordLayout;
const SERVICES = 1000;
const PER_SERVICE = 10;
const services = new Uint32Array(SERVICES * S.words);
const destinations = new Uint32Array(SERVICES * PER_SERVICE * D.words);
for (let s = 0; s < SERVICES; s++) {
  const at = s * S.words;
  services[at] = S.bit.af | S.bit.protocol | S.bit.address | S.bit.port | S.bit.scheduler | S.bit.flags | S.bit.timeout |
    S.bit.netmask | S.bit.destinationCount | S.bit.stats;
  services[at + S.at.af] = 2;
  services[at + S.at.protocol] = 6;
  new Uint8Array(services.buffer, (at + S.at.address) * 4, 4).set([10, 100 + Math.floor(s / 250), s % 250, 1]);
  services[at + S.at.port] = 80;
  services[at + S.at.netmask] = 0xffffffff;
  services[at + S.at.destinationCount] = PER_SERVICE;
  for (let d = 0; d < PER_SERVICE; d++) {
    const to = (s * PER_SERVICE + d) * D.words;
    destinations[to] = D.bit.address | D.bit.port | D.bit.forward | D.bit.weight | D.bit.upperThreshold | D.bit.lowerThreshold |
      D.bit.af | D.bit.activeConnections | D.bit.inactiveConnections | D.bit.persistentConnections | D.bit.stats;
    new Uint8Array(destinations.buffer, (to + D.at.address) * 4, 4).set([192, 168, s % 250, 10 + d + 20 * Math.floor(s / 250)]);
    destinations[to + D.at.port] = 8080;
    destinations[to + D.at.forward] = 0; // masquerading
    destinations[to + D.at.weight] = d + 1;
    destinations[to + D.at.af] = 2;
  }
}
const table = { services, destinations, strings: ['wrr'] };
const IpvsHandle = {
  open: async () => ({
    listTable: async () => table,
    execute: async () => ({ version: 0x010201, connectionTableSize: 4096 }),
    close() {},
  }),
};
require.cache[addonPath].exports = { ...addon, IpvsHandle };
