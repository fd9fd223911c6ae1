// The namespace-wide IPVS counters (/proc/net/ip_vs_stats). Netlink has no request for them,
// and they are not the sum of the services' counters: traffic of services deleted since the
// last zero stays in them, so only the kernel's own totals make a monotonic counter.
import { fromNativeError } from '../errors';
import { nativeAddon } from '../native';
import type { Stats } from '../types';

/** Totals since IPVS was loaded (or last zeroed), and the kernel's per-second estimates. */
export type GlobalStats = Stats;

/**
 * Parses ip_vs_stats: two header lines, the five totals in hex, a blank line, two header
 * lines, the five rates in hex (ip_vs_stats_show in net/netfilter/ipvs/ip_vs_ctl.c).
 * @throws {Error} when the text is not in that format.
 */
export function parseGlobalStats(text: string): GlobalStats {
  const rows = text.split('\n').map((line) => line.trim()).filter((line) => /^[0-9A-Fa-f]+( +[0-9A-Fa-f]+){4}$/.test(line));
  if (rows.length < 2) throw new Error(`ip_vs_stats: expected two rows of five hex numbers, got ${JSON.stringify(text.slice(0, 200))}`);
  const [totals, rates] = rows.slice(0, 2).map((row) => row.split(/ +/).map((field) => BigInt(`0x${field}`))) as [bigint[], bigint[]];
  return {
    connections: totals[0]!, packetsIn: totals[1]!, packetsOut: totals[2]!, bytesIn: totals[3]!, bytesOut: totals[4]!,
    connectionRate: rates[0]!, packetRateIn: rates[1]!, packetRateOut: rates[2]!, byteRateIn: rates[3]!, byteRateOut: rates[4]!,
  };
}

/**
 * Reads the namespace's totals off the event loop (the file is opened inside `netns`, if given,
 * by a short-lived thread of the addon's own).
 * @throws {IpvsError} 'ENOENT' when IPVS is not loaded in the kernel, 'EPERM' when the
 *   namespace cannot be entered.
 */
export async function readGlobalStats(netns: string | undefined): Promise<GlobalStats> {
  const addon = nativeAddon();
  let text: string;
  try {
    text = await addon.readProcNet(netns ?? '', 'ip_vs_stats');
  } catch (error) {
    throw fromNativeError(error, 'readGlobalStats');
  }
  return parseGlobalStats(text);
}
