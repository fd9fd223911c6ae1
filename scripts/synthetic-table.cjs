// A made-up IPVS table as the addon's packed records: `services` IPv4 TCP services (wrr, port
// 80) with `destinations` NAT real servers each (port 8080, weights 1, 2, ...). Used where the
// command's listing code must run without a kernel: the CLI bundle's code-cache warm-up and the
// host probe's stand-in kernel (bench/cli-host-fake.cjs). Addresses stay distinct up to 5,000
// services.
'use strict';

/** @param layout the addon's `recordLayout` */
function syntheticTable(layout, services, destinations) {
  const { service: S, destination: D } = layout;
  const svc = new Uint32Array(services * S.words);
  const dst = new Uint32Array(services * destinations * D.words);
  for (let s = 0; s < services; s++) {
    const at = s * S.words;
    svc[at] = S.bit.af | S.bit.protocol | S.bit.address | S.bit.port | S.bit.scheduler | S.bit.flags | S.bit.timeout |
      S.bit.netmask | S.bit.destinationCount | S.bit.stats;
    svc[at + S.at.af] = 2;
    svc[at + S.at.protocol] = 6;
    new Uint8Array(svc.buffer, (at + S.at.address) * 4, 4).set([10, 100 + Math.floor(s / 250), s % 250, 1]);
    svc[at + S.at.port] = 80;
    svc[at + S.at.netmask] = 0xffffffff;
    svc[at + S.at.destinationCount] = destinations;
    for (let d = 0; d < destinations; d++) {
      const to = (s * destinations + d) * D.words;
      dst[to] = D.bit.address | D.bit.port | D.bit.forward | D.bit.weight | D.bit.upperThreshold | D.bit.lowerThreshold |
        D.bit.af | D.bit.activeConnections | D.bit.inactiveConnections | D.bit.persistentConnections | D.bit.stats;
      new Uint8Array(dst.buffer, (to + D.at.address) * 4, 4).set([192, 168, s % 250, 10 + d + 20 * Math.floor(s / 250)]);
      dst[to + D.at.port] = 8080;
      dst[to + D.at.forward] = 0; // masquerading
      dst[to + D.at.weight] = d + 1;
      dst[to + D.at.af] = 2;
    }
  }
  return { services: svc, destinations: dst, strings: ['wrr'] };
}

module.exports = { syntheticTable };
