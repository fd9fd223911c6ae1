// Kernel errors through the public API: each is an IpvsError with the kernel's errno, the
// operation and an ipvsadm-like message, and leaves the table as it was.
import { execFileSync } from 'node:child_process';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { Ipvs, IpvsError } from '../../lib/index';
import { Command, PROTOCOL_NUMBERS } from '../../lib/constants';
import { requestRecord } from '../../lib/records';
import { DIST_INDEX, HAS_TWOS, expectIpvsError, saveLines } from './api-helpers';
import { createNetns, type TestNetns } from './helpers';

const S4 = { protocol: 'tcp', address: '10.0.0.1', port: 80 } as const;
const S6 = { protocol: 'udp', address: '2001:db8::1', port: 53 } as const;
const FW = { fwmark: 7 } as const;
const MISSING = { protocol: 'tcp', address: '10.0.0.99', port: 80 } as const;

describe('kernel errors', () => {
  let ns: TestNetns;
  let ipvs: Ipvs;
  let table: string[];
  const save = (): string[] => saveLines(ns.run('ipvsadm', ['-S', '-n']));

  beforeAll(async () => {
    ns = createNetns('err');
    ipvs = await Ipvs.open({ netns: ns.path });
  });
  beforeEach(async () => {
    await ipvs.addService({ ...S4, scheduler: 'rr', persistent: 60 });
    await ipvs.addDestination(S4, { address: '10.0.1.1', forward: 'masq', weight: 2 });
    await ipvs.addService({ ...S6, scheduler: 'sh' });
    await ipvs.addService(FW);
    table = save();
    expect(table).toHaveLength(4);
  });
  afterEach(() => {
    // every error case leaves the table as it was
    expect(save()).toEqual(table);
    ns.run('ipvsadm', ['-C']);
  });
  afterAll(async () => {
    await ipvs?.close();
    ns?.remove();
  });

  describe('duplicates: EEXIST', () => {
    it('adding a service that exists, even with other options', async () => {
      const e = await expectIpvsError(ipvs.addService({ ...S4, scheduler: 'wlc' }), 'EEXIST', 'addService');
      expect(e.message).toBe('addService: Service already exists (EEXIST)');
      await expectIpvsError(ipvs.addService({ ...S6, scheduler: 'sh' }), 'EEXIST', 'addService');
      await expectIpvsError(ipvs.addService({ fwmark: 7, scheduler: 'rr' }), 'EEXIST', 'addService');
    });

    it('adding a destination that exists, even with other options', async () => {
      const e = await expectIpvsError(ipvs.addDestination(S4, { address: '10.0.1.1', forward: 'route', weight: 9 }), 'EEXIST', 'addDestination');
      expect(e.message).toBe('addDestination: Destination already exists (EEXIST)');
    });
  });

  describe('missing services: ESRCH', () => {
    it.each([
      ['getService', (i: Ipvs) => i.getService(MISSING)],
      ['getService', (i: Ipvs) => i.getService({ fwmark: 7, family: 'inet6' })],
      ['editService', (i: Ipvs) => i.editService({ ...MISSING, scheduler: 'rr' })],
      ['deleteService', (i: Ipvs) => i.deleteService(MISSING)],
      ['deleteService', (i: Ipvs) => i.deleteService({ ...S4, protocol: 'udp' })],
      ['zero', (i: Ipvs) => i.zero({ fwmark: 8 })],
      ['listDestinations', (i: Ipvs) => i.listDestinations(MISSING)],
      ['addDestination', (i: Ipvs) => i.addDestination(MISSING, { address: '10.0.1.1' })],
      ['editDestination', (i: Ipvs) => i.editDestination(MISSING, { address: '10.0.1.1' })],
      ['deleteDestination', (i: Ipvs) => i.deleteDestination(MISSING, { address: '10.0.1.1' })],
    ] as const)('%s', async (operation, call) => {
      const e = await expectIpvsError(call(ipvs), 'ESRCH', operation);
      expect(e.message).toMatch(operation.includes('Destination') && operation !== 'listDestinations'
        ? /: Service not defined \(ESRCH\)$/
        : /: No such service \(ESRCH\)$/);
    });
  });

  describe('missing destinations: ENOENT', () => {
    it.each([
      ['editDestination', (i: Ipvs) => i.editDestination(S4, { address: '10.0.1.2' })],
      ['editDestination', (i: Ipvs) => i.editDestination(S4, { address: '10.0.1.1', port: 81, forward: 'masq' })],
      ['deleteDestination', (i: Ipvs) => i.deleteDestination(S4, { address: '10.0.1.2' })],
      ['deleteDestination', (i: Ipvs) => i.deleteDestination(FW, { address: '10.0.1.1' })],
    ] as const)('%s', async (operation, call) => {
      const e = await expectIpvsError(call(ipvs), 'ENOENT', operation);
      expect(e.message).toBe(`${operation}: No such destination (ENOENT)`);
    });
  });

  describe('schedulers and persistence engines the kernel does not have: ENOENT', () => {
    // Every name our API accepts is a real scheduler, and the VM loads them all; what the
    // kernel lacks is twos before 6.2, and any name at all sent below the TypeScript checks.
    // One test on every kernel, so neither kernel skips it: ENOENT before 6.2, accepted after.
    it(`twos ${HAS_TWOS ? 'works on this kernel' : 'is missing on this kernel (ENOENT)'}`, async () => {
      if (HAS_TWOS) {
        await ipvs.addService({ ...MISSING, scheduler: 'twos' });
        expect((await ipvs.getService(MISSING)).scheduler).toBe('twos');
        await ipvs.deleteService(MISSING);
        return;
      }
      const e = await expectIpvsError(ipvs.addService({ ...MISSING, scheduler: 'twos' }), 'ENOENT', 'addService');
      expect(e.message).toBe('addService: Scheduler or persistence engine not found (ENOENT)');
      await expectIpvsError(ipvs.editService({ ...S4, scheduler: 'twos' }), 'ENOENT', 'editService');
    });

    /** Sends a service request with `overrides` straight to the addon, past the TS checks. */
    function raw(operation: string, command: number, overrides: object): Promise<unknown> {
      const service = {
        af: 2, protocol: PROTOCOL_NUMBERS.tcp, address: Buffer.from([10, 0, 0, 99, ...Array(12).fill(0)]), port: 80,
        scheduler: 'wlc', flags: 0, flagsMask: 0xffffffff, timeout: 0, netmask: 0xffffffff, ...overrides,
      };
      return ipvs.change(operation, requestRecord(command, service));
    }

    it('an unknown scheduler name', async () => {
      const e = await expectIpvsError(raw('addService', Command.NEW_SERVICE, { scheduler: 'nosuch' }), 'ENOENT', 'addService');
      expect(e.message).toBe('addService: Scheduler or persistence engine not found (ENOENT)');
      // editing an existing service to it leaves the service as it was
      await expectIpvsError(
        raw('editService', Command.SET_SERVICE, { address: Buffer.from([10, 0, 0, 1, ...Array(12).fill(0)]), scheduler: 'nosuch' }),
        'ENOENT', 'editService',
      );
      expect((await ipvs.getService(S4)).scheduler).toBe('rr');
    });

    it('an unknown persistence engine', async () => {
      await expectIpvsError(raw('addService', Command.NEW_SERVICE, { peName: 'nosuch', flags: 1, timeout: 10 }), 'ENOENT', 'addService');
      await expectIpvsError(ipvs.getService(MISSING), 'ESRCH', 'getService');
    });

    it('the raw path itself works (so the errors above are the kernel\'s)', async () => {
      await raw('addService', Command.NEW_SERVICE, { scheduler: 'lc' });
      expect((await ipvs.getService(MISSING)).scheduler).toBe('lc');
      await ipvs.deleteService(MISSING);
    });
  });

  describe('values only the kernel rejects: EINVAL', () => {
    it('a multicast or broadcast IPv4 destination', async () => {
      await expectIpvsError(ipvs.addDestination(S4, { address: '224.0.0.1' }), 'EINVAL', 'addDestination');
      await expectIpvsError(ipvs.addDestination(S4, { address: '255.255.255.255' }), 'EINVAL', 'addDestination');
    });

    it('an IPv4-mapped or multicast IPv6 destination', async () => {
      await expectIpvsError(ipvs.addDestination(S6, { address: '::ffff:10.0.0.1', forward: 'masq' }), 'EINVAL', 'addDestination');
      await expectIpvsError(ipvs.addDestination(S6, { address: 'ff02::1' }), 'EINVAL', 'addDestination');
    });
  });

  describe('handles and namespaces', () => {
    it('a closed handle rejects with EBADF', async () => {
      const other = await Ipvs.open({ netns: ns.path });
      const pending = other.listServices();
      await other.close();
      // queued before close: still answered
      expect(await pending).toHaveLength(3);
      const e = await expectIpvsError(other.listServices(), 'EBADF', 'listServices');
      expect(e.message).toBe('listServices: The handle is closed (EBADF)');
      await expectIpvsError(other.addService(MISSING), 'EBADF', 'addService');
      await other.close();  // twice is fine
    });

    it.each(['/run/netns/no-such-namespace', '/proc/2147483647/ns/net'])('a missing namespace %s is ENOENT naming the path', async (path) => {
      const e = await expectIpvsError(Ipvs.open({ netns: path }), 'ENOENT', 'open');
      expect(e.path).toBe(path);
      expect(e.message).toContain(path);
      expect(e.message).toContain('network namespace not found');
    });

    it('a path that is not a network namespace is an error naming the path', async () => {
      for (const path of ['/etc/hostname', '/proc/self/ns/uts']) {
        const e = await Ipvs.open({ netns: path }).then(() => undefined, (err: unknown) => err);
        expect(e).toBeInstanceOf(IpvsError);
        expect((e as IpvsError).code).toBe('EINVAL');
        expect((e as IpvsError).path).toBe(path);
        expect((e as IpvsError).message).toContain(path);
      }
    });
  });

  describe('without CAP_NET_ADMIN: EPERM', () => {
    // A child node process run by setpriv tries every kind of call and reports what it got.
    const child = `
      const { Ipvs } = require(${JSON.stringify(DIST_INDEX)});
      const fs = require('node:fs');
      (async () => {
        const capEff = /CapEff:\\s*([0-9a-f]+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1];
        const result = { netAdmin: (BigInt('0x' + capEff) >> 12n & 1n) === 1n, calls: {} };
        const netns = process.argv[1] || undefined;
        const ipvs = await Ipvs.open(netns ? { netns } : {});
        const S = { protocol: 'tcp', address: '10.0.0.1', port: 80 };
        const calls = {
          listServices: () => ipvs.listServices(),
          getService: () => ipvs.getService(S),
          addService: () => ipvs.addService({ protocol: 'tcp', address: '10.0.0.50', port: 80 }),
          editService: () => ipvs.editService({ ...S, scheduler: 'lc' }),
          deleteService: () => ipvs.deleteService(S),
          listDestinations: () => ipvs.listDestinations(S),
          addDestination: () => ipvs.addDestination(S, { address: '10.0.1.50' }),
          deleteDestination: () => ipvs.deleteDestination(S, { address: '10.0.1.1' }),
        };
        for (const [name, call] of Object.entries(calls)) {
          try { await call(); result.calls[name] = 'resolved'; }
          catch (e) { result.calls[name] = { name: e.name, code: e.code, errno: e.errno, operation: e.operation, message: e.message }; }
        }
        await ipvs.close();
        console.log(JSON.stringify(result));
      })().catch((e) => { console.log(JSON.stringify({ fatal: String(e), code: e.code, path: e.path })); });
    `;
    const runChild = (setprivArgs: string[], netns: string): { netAdmin?: boolean; calls?: Record<string, unknown>; fatal?: string; code?: string } =>
      JSON.parse(execFileSync('setpriv', [...setprivArgs, '--', process.execPath, '-e', child, netns], { encoding: 'utf8' }));

    function expectAllEperm(calls: Record<string, unknown> | undefined): void {
      expect(Object.keys(calls ?? {})).toHaveLength(8);
      for (const [operation, outcome] of Object.entries(calls ?? {})) {
        expect(outcome, operation).toEqual({
          name: 'IpvsError', code: 'EPERM', errno: 1, operation,
          message: `${operation}: Permission denied (CAP_NET_ADMIN is required in the network namespace) (EPERM)`,
        });
      }
    }

    it('root without CAP_NET_ADMIN gets EPERM from every call, and changes nothing', () => {
      const result = runChild(['--inh-caps=-net_admin', '--ambient-caps=-net_admin', '--bounding-set=-net_admin'], ns.path);
      expect(result.fatal).toBeUndefined();
      expect(result.netAdmin).toBe(false);
      expectAllEperm(result.calls);
    });

    it('an unprivileged user gets EPERM in its own namespace', () => {
      const result = runChild(['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'], '');
      expect(result.fatal).toBeUndefined();
      expect(result.netAdmin).toBe(false);
      expectAllEperm(result.calls);
    });

    it('an unprivileged user cannot enter another namespace: EPERM naming the path', () => {
      const result = runChild(['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'], ns.path);
      expect(result.fatal).toContain(ns.path);
      expect(result.code).toMatch(/^(EPERM|EACCES)$/);
    });

    // Each child is a node process started synchronously: slow to start on a loaded emulator.
    it('the same child without another capability succeeds (so the EPERMs are real)', { timeout: 180_000 }, () => {
      const result = runChild(['--inh-caps=-sys_module', '--ambient-caps=-sys_module', '--bounding-set=-sys_module'], ns.path);
      expect(result.netAdmin).toBe(true);
      expect(result.calls?.listServices).toBe('resolved');
      expect(result.calls?.getService).toBe('resolved');
      // undo what it did so afterEach sees the table as it was
      ns.run('ipvsadm', ['-C']);
      ns.run('ipvsadm', ['-R'], { input: `${table.join('\n')}\n` });
    });
  });
});
