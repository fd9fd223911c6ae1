// A small director: a virtual service with two real servers, in a network namespace of its
// own, printed as a table. Needs root and a kernel with IPVS (`npm start` provides both).
import { execFileSync } from 'node:child_process';

import { Ipvs } from 'ipvs-netlink';

const netns = 'ipvs-demo';
execFileSync('ip', ['netns', 'add', netns]);
execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);  // a namespace with no routes has no unicast addresses
const ipvs = await Ipvs.open({ netns: `/run/netns/${netns}` });
try {
  const service = { protocol: 'tcp', address: '192.0.2.10', port: 80 };

  await ipvs.addService({ ...service, scheduler: 'wrr', persistent: 300 });
  await ipvs.addDestination(service, { address: '198.51.100.11', forward: 'masq', weight: 3 });
  await ipvs.addDestination(service, { address: '198.51.100.12', forward: 'masq', weight: 1 });

  const { version, connectionTableSize } = await ipvs.info();
  console.log(`IPVS ${version} (${connectionTableSize} buckets) in netns ${netns}`);
  for (const svc of await ipvs.listServices()) {
    const persistence = svc.persistent ? ` persistent ${svc.persistent}s` : '';
    console.log(`${svc.protocol.toUpperCase()}  ${svc.address}:${svc.port} ${svc.scheduler}${persistence}`);
    for (const dest of await ipvs.listDestinations(svc)) {
      console.log(`  -> ${dest.address}:${dest.port}  ${dest.forward}  weight ${dest.weight}  active ${dest.activeConnections}  inactive ${dest.inactiveConnections}`);
    }
  }
  console.log('\nThe same table as ipvsadm sees it:');
  console.log(execFileSync('ip', ['netns', 'exec', netns, 'ipvsadm', '-Ln'], { encoding: 'utf8' }));
} finally {
  await ipvs.close();
  execFileSync('ip', ['netns', 'delete', netns]);
}
