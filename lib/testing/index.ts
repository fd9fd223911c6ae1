// ipvs-netlink/testing: throwaway network namespaces, LVS topologies and traffic for
// integration tests of code that drives IPVS. Needs Linux, root and iproute2; on machines
// without IPVS, run the tests through `npx ipvs-netlink sandbox -- …`.
export { CommandError, type CommandLine, type ExecOptions } from './command';
export type { NetnsProcess, ProcessExit } from './process';
export { Netns, createNetns, withNetns, type NetnsOptions, type RouteOptions } from './netns';
export { veth, type VethEnd, type VethOptions, type VethPair } from './veth';
export { bridge, type Bridge, type BridgeOptions } from './bridge';
export {
  topology, type Topology, type TopologyMode, type TopologyOptions, type TopologyRealServer, type TopologyTunnel,
} from './topology';
export { startHttpServer, startTcpServer, type ServerOptions, type TestServer } from './servers';
export { httpClient, tcpClient, type HttpClientOptions, type HttpExchange, type TcpClientOptions, type TcpExchange } from './client';
export { ipvsAvailable, ipvsUnavailableReason, skipUnlessIpvs, type SkippableContext } from './availability';
export { waitFor, type WaitOptions } from './wait';
