// Types as a bundler sees them (moduleResolution bundler).
import { Ipvs, type ServiceSpec } from 'ipvs-netlink';
import { httpClient, startHttpServer, topology, type HttpExchange } from 'ipvs-netlink/testing';

export async function check(): Promise<HttpExchange[]> {
  const topo = await topology('nat');
  await startHttpServer(topo.realServers[0]!.ns, { port: 80 });
  const spec: ServiceSpec = { protocol: 'tcp', address: topo.vip, port: 80, scheduler: 'rr' };
  const ipvs = await Ipvs.open({ netns: topo.director.path });
  await ipvs.addService(spec);
  await ipvs.addDestination(spec, topo.destination(0));
  return httpClient(topo.client, { url: `http://${topo.vip}/` });
}
