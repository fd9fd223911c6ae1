// ipvs-netlink: control the Linux IPVS load balancer over generic netlink.
export { Ipvs } from './ipvs';
export { IpvsError, IpvsUnavailableError } from './errors';
export type * from './types';
