// Types as an ES module sees them (moduleResolution node16).
import { Ipvs, IpvsError, type Destination } from 'ipvs-netlink';
import { topology, withNetns, type Netns, type TcpExchange, type Topology } from 'ipvs-netlink/testing';

export async function check(): Promise<void> {
  const topo: Topology = await topology('tun', { tunnel: 'gue', realServers: 3 });
  const ipvs: Ipvs = await Ipvs.open({ netns: topo.director.path });
  const dests: Destination[] = await ipvs.listDestinations({ protocol: 'tcp', address: topo.vip, port: 80 });
  const names: string = await withNetns(async (ns: Netns) => ns.exec(['ip', 'link']));
  const exchange: TcpExchange | undefined = undefined;
  void [dests, names, exchange, IpvsError];
  // @ts-expect-error: only 'nat' | 'dr' | 'tun'
  await topology('masq');
}
