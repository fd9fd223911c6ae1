import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { Ipvs } from '../../lib/index';
import type { TestNetns } from './helpers';
import { withFreshNetns } from './api-helpers';

// The whole chain — TypeScript, addon, libnl, kernel — against the VM's real IPVS.
describe('info()', () => {
  let ns: TestNetns;
  let ipvs: Ipvs;
  withFreshNetns('info', (opened) => ({ ns, ipvs } = opened));

  it('reports the kernel IPVS version and table size, as /proc/net/ip_vs does', async () => {
    const info = await ipvs.info();
    const proc = readFileSync('/proc/net/ip_vs', 'utf8');
    const match = /IP Virtual Server version (\d+\.\d+\.\d+) \(size=(\d+)\)/.exec(proc);
    expect(match).not.toBeNull();
    expect(info.version).toBe(match![1]);
    expect(info.connectionTableSize).toBe(Number(match![2]));
    expect(info.version).toBe('1.2.1');
    console.log(`kernel ${process.env.IPVS_VM_KERNEL} (${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}): IPVS ${info.version}, ${info.connectionTableSize} buckets`);
  });

  it('opens a handle in the caller namespace too', async () => {
    const own = await Ipvs.open();
    try {
      expect((await own.info()).version).toBe('1.2.1');
    } finally {
      await own.close();
    }
  });

  it('rejects calls after close with EBADF', async () => {
    const handle = await Ipvs.open({ netns: ns.path });
    await handle.close();
    await expect(handle.info()).rejects.toMatchObject({ code: 'EBADF', operation: 'info' });
    // The connection-table readers use no socket, but a closed handle refuses them too.
    await expect(handle.connectionTable()).rejects.toMatchObject({ code: 'EBADF', operation: 'connectionTable' });
    await expect(handle.countConnections({ by: 'client' })).rejects.toMatchObject({ code: 'EBADF', operation: 'countConnections' });
    expect(() => handle.connections()).toThrow(expect.objectContaining({ code: 'EBADF', operation: 'connections' }));
  });
});
