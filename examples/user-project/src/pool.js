// applyPool: make a TCP service on IPVS match a list of real servers, touching only what differs.
/**
 * @param {import('ipvs-netlink').Ipvs} ipvs
 * @param {import('./pool.js').Pool} pool
 * @returns {Promise<{ added: string[]; updated: string[]; removed: string[] }>}
 */
export async function applyPool(ipvs, pool) {
  const service = { protocol: 'tcp', address: pool.vip, port: pool.port };
  const existing = await ipvs.getService(service).catch((error) => {
    if (error.code === 'ESRCH') return undefined;
    throw error;
  });
  if (!existing) await ipvs.addService({ ...service, scheduler: pool.scheduler ?? 'wlc' });
  else if (existing.scheduler !== (pool.scheduler ?? 'wlc')) await ipvs.editService({ ...service, scheduler: pool.scheduler ?? 'wlc' });

  const current = new Map((existing ? await ipvs.listDestinations(service) : []).map((d) => [d.address, d]));
  const result = { added: [], updated: [], removed: [] };
  for (const server of pool.servers) {
    const wanted = { address: server.address, port: pool.port, forward: pool.forward ?? 'masq', weight: server.weight ?? 1 };
    const found = current.get(server.address);
    current.delete(server.address);
    if (!found) {
      await ipvs.addDestination(service, wanted);
      result.added.push(server.address);
    } else if (found.weight !== wanted.weight || found.forward !== wanted.forward) {
      await ipvs.editDestination(service, wanted);
      result.updated.push(server.address);
    }
  }
  for (const stale of current.keys()) {
    await ipvs.deleteDestination(service, { address: stale, port: pool.port });
    result.removed.push(stale);
  }
  return result;
}
