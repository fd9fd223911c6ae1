// Following keepalived: the notify line parser, the `vrrp` configuration, the state machine
// that switches the sync daemon (against a fake kernel: a unit test of our code; the kernel
// suite's test/kernel/ha/ is the evidence), and the FIFO reader on a real FIFO.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

import { resolveConfig } from '../../../lib/director/config';
import { Director } from '../../../lib/director/director';
import type { DirectorEvent } from '../../../lib/director/events';
import { Ipvs } from '../../../lib/ipvs';
import { ConfigFileError, parseConfig } from '../../../lib/director/loader';
import {
  FifoLineReader, VrrpFollower, checkVrrpConfig, daemonStateFor, parseVrrpLine, type DaemonControl, type VrrpHooks,
} from '../../../lib/director/vrrp';
import { IpvsError } from '../../../lib/errors';
import type { DaemonConfig, DaemonSpec, DaemonState } from '../../../lib/types';
import { waitFor } from '../../../lib/testing/wait';

const dir = mkdtempSync(path.join(tmpdir(), 'vrrp-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sync = { interface: 'eth1', syncId: 7 };
const vrrp = { keepalivedFifo: '/run/keepalived/vrrp.fifo', instance: 'VI_1', sync };
const services = [{ protocol: 'tcp', address: '10.0.0.1', port: 80, destinations: [{ address: '10.0.1.1' }] }];

describe('parseVrrpLine', () => {
  it('reads keepalived FIFO lines and notify script arguments', () => {
    expect(parseVrrpLine('INSTANCE "VI_1" MASTER 100')).toEqual({ kind: 'instance', name: 'VI_1', state: 'master', priority: 100 });
    expect(parseVrrpLine('INSTANCE "VI 1" BACKUP 90\r')).toEqual({ kind: 'instance', name: 'VI 1', state: 'backup', priority: 90 });
    expect(parseVrrpLine('INSTANCE VI_1 FAULT 0')).toEqual({ kind: 'instance', name: 'VI_1', state: 'fault', priority: 0 });
    expect(parseVrrpLine('GROUP "G1" MASTER')).toEqual({ kind: 'group', name: 'G1', state: 'master' });
    expect(parseVrrpLine('INSTANCE "VI_1" STOP 100')).toMatchObject({ state: 'stop' });
    expect(parseVrrpLine('INSTANCE "VI_1" DELETED 100')).toMatchObject({ state: 'deleted' });
  });

  it('ignores what is not a state change', () => {
    for (const line of [
      '', 'garbage', 'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100', 'INSTANCE "VI_1" MASTER_PRIORITY 110',
      'VS [10.0.0.1]:tcp:80 UP', 'RS [10.0.1.1]:tcp:80 [10.0.0.1]:tcp:80 DOWN', 'INSTANCE "VI_1" master 100',
      'INSTANCE "VI_1" MASTER high',
    ]) {
      expect(parseVrrpLine(line), line).toBeUndefined();
    }
  });

  it('maps states to daemons as lvs_sync_daemon does', () => {
    expect(daemonStateFor('master')).toBe('master');
    for (const state of ['backup', 'fault', 'stop', 'deleted'] as const) expect(daemonStateFor(state)).toBe('backup');
  });
});

describe('the vrrp configuration', () => {
  it('is resolved with the rest of the configuration', () => {
    expect(resolveConfig({ services, vrrp }).vrrp).toEqual({ fifo: vrrp.keepalivedFifo, source: 'keepalivedFifo', instance: 'VI_1', sync });
    expect(resolveConfig({ services, vrrp: { notify: '/run/d.fifo', instance: 'VI_1', sync: { interface: 'eth1' } } }).vrrp)
      .toMatchObject({ fifo: '/run/d.fifo', source: 'notify' });
    expect(resolveConfig({ services }).vrrp).toBeUndefined();
  });

  it.each([
    [{ instance: 'VI_1', sync }, RangeError, 'vrrp must have exactly one of keepalivedFifo and notify'],
    [{ ...vrrp, notify: '/x' }, RangeError, 'vrrp must have exactly one of keepalivedFifo and notify'],
    [{ ...vrrp, keepalivedFifo: 'relative.fifo' }, RangeError, 'vrrp.keepalivedFifo must be an absolute path'],
    [{ ...vrrp, instance: 'VI 1' }, RangeError, 'vrrp.instance must be a vrrp_instance name'],
    [{ ...vrrp, instance: 3 }, TypeError, 'vrrp.instance must be a string'],
    [{ ...vrrp, sync: { ...sync, state: 'master' } }, TypeError, 'vrrp.sync.state is not a known option'],
    [{ ...vrrp, sync: { ...sync, syncId: 256 } }, RangeError, 'vrrp.sync.syncId'],
    [{ ...vrrp, sync: { interface: 'an-interface-name-too-long' } }, RangeError, 'vrrp.sync.interface'],
    [{ ...vrrp, sync: { ...sync, maxLength: 600 } }, RangeError, 'vrrp.sync.maxLength'],   // below the backup's minimum
    [{ ...vrrp, sync: { ...sync, group: '10.0.0.1' } }, RangeError, 'vrrp.sync.group must be a multicast address'],
    [{ ...vrrp, priority: 100 }, TypeError, 'vrrp.priority is not a known option'],
  ])('refuses %j', (value, type, message) => {
    expect(() => checkVrrpConfig(value)).toThrow(type);
    expect(() => resolveConfig({ services, vrrp: value })).toThrow(message);
  });

  it('names the file, path and line of an error in YAML', () => {
    const text = [
      'services:',
      '  - { protocol: tcp, address: 10.0.0.1, port: 80, destinations: [{ address: 10.0.1.1 }] }',
      'vrrp:',
      '  keepalivedFifo: /run/keepalived/vrrp.fifo',
      '  instance: VI_1',
      '  sync:',
      '    interface: eth1',
      '    syncId: 300',
    ].join('\n');
    let error: unknown;
    try {
      parseConfig(text, 'director.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigFileError);
    expect(error).toMatchObject({ file: 'director.yaml', line: 8, path: 'vrrp.sync.syncId' });
    expect(parseConfig(text.replace('300', '30'), 'director.yaml')).toMatchObject({ vrrp: { instance: 'VI_1', sync: { syncId: 30 } } });
  });
});

/** A kernel's sync daemons, with the errors the kernel gives (ESRCH, EEXIST), and injectable failures. */
class FakeDaemons implements DaemonControl {
  running: DaemonConfig[] = [];
  calls: string[] = [];
  failStart = 0;

  async listDaemons(): Promise<DaemonConfig[]> {
    return structuredClone(this.running);
  }

  async startDaemon(spec: DaemonSpec): Promise<void> {
    this.calls.push(`start ${spec.state}`);
    if (this.failStart > 0) {
      this.failStart--;
      throw new IpvsError({ errno: 19, operation: 'startDaemon' });   // ENODEV: the interface is not there yet
    }
    if (this.running.some((d) => d.state === spec.state)) throw new IpvsError({ errno: 17, operation: 'startDaemon' });
    this.running.push({ state: spec.state, interface: spec.interface, syncId: spec.syncId ?? 0, group: '224.0.0.81', port: 8848, ttl: 1 });
  }

  async stopDaemon(state: DaemonState): Promise<void> {
    this.calls.push(`stop ${state}`);
    if (!this.running.some((d) => d.state === state)) throw new IpvsError({ errno: 3, operation: 'stopDaemon' });
    this.running = this.running.filter((d) => d.state !== state);
  }
}

function follower(config = vrrp) {
  const events: string[] = [];
  const errors: Array<{ operation: string; error: unknown; retryIn?: number }> = [];
  const hooks: VrrpHooks = {
    transition: (e) => events.push(`vrrp ${e.from}->${e.to}${e.priority === undefined ? '' : ` ${e.priority}`}`),
    daemon: (e) => events.push(`daemon ${e.from}->${e.to} ${e.interface} ${e.syncId}`),
    error: (operation, error, retryIn) => errors.push({ operation, error, ...(retryIn === undefined ? {} : { retryIn }) }),
  };
  return { machine: new VrrpFollower(checkVrrpConfig(config), hooks), events, errors };
}

describe('VrrpFollower', () => {
  afterEach(() => { vi.useRealTimers(); });

  it('starts the backup daemon, then switches with every state of its instance', async () => {
    const kernel = new FakeDaemons();
    const { machine, events, errors } = follower();
    await machine.start(kernel, { openFifo: false });
    expect(kernel.running).toMatchObject([{ state: 'backup', interface: 'eth1', syncId: 7 }]);
    expect(machine.status()).toMatchObject({ instance: 'VI_1', state: 'unknown', daemon: 'backup', transitions: 0 });

    machine.handleLine('INSTANCE "VI_1" BACKUP 100');           // no change of daemon
    machine.handleLine('INSTANCE "VI_2" MASTER 100');           // another instance
    machine.handleLine('GROUP "VI_1" MASTER');                  // a group of the same name
    machine.handleLine('INSTANCE "VI_1" MASTER_PRIORITY 120');  // not a state
    await machine.settled();
    expect(kernel.running.map((d) => d.state)).toEqual(['backup']);

    machine.handleLine('INSTANCE "VI_1" MASTER 100');
    await machine.settled();
    expect(kernel.running).toMatchObject([{ state: 'master', interface: 'eth1', syncId: 7 }]);
    expect(machine.status()).toMatchObject({ state: 'master', daemon: 'master', priority: 100, transitions: 2 });

    machine.handleLine('INSTANCE "VI_1" FAULT 0');
    await machine.settled();
    expect(kernel.running.map((d) => d.state)).toEqual(['backup']);
    machine.handleLine('INSTANCE "VI_1" STOP 0');
    await machine.settled();
    expect(kernel.running.map((d) => d.state)).toEqual(['backup']);

    expect(kernel.calls).toEqual(['start backup', 'stop backup', 'start master', 'stop master', 'start backup']);
    expect(events).toEqual([
      'daemon none->backup eth1 7',
      'vrrp unknown->backup 100',
      'vrrp backup->master 100', 'daemon backup->master eth1 7',
      'vrrp master->fault 0', 'daemon master->backup eth1 7',
      'vrrp fault->stop 0',
    ]);
    expect(errors).toEqual([]);
    machine.stop();
  });

  it('keeps a daemon of the configured settings that already runs (a restart while master), replaces others', async () => {
    const kernel = new FakeDaemons();
    kernel.running = [{ state: 'master', interface: 'eth1', syncId: 7 }];
    const { machine, events } = follower();
    await machine.start(kernel, { openFifo: false });
    expect(kernel.calls).toEqual([]);
    expect(machine.status().daemon).toBe('master');
    expect(events).toEqual([]);
    machine.stop();

    const other = new FakeDaemons();
    other.running = [{ state: 'master', interface: 'eth0', syncId: 1 }];
    const second = follower();
    await second.machine.start(other, { openFifo: false });
    expect(other.calls).toEqual(['stop master', 'start backup']);
    expect(other.running).toMatchObject([{ state: 'backup', interface: 'eth1', syncId: 7 }]);
    second.machine.stop();
  });

  it('coalesces quick transitions to the last state', async () => {
    const kernel = new FakeDaemons();
    const { machine } = follower();
    await machine.start(kernel, { openFifo: false });
    kernel.calls = [];
    machine.handleLine('INSTANCE "VI_1" MASTER 100');
    machine.handleLine('INSTANCE "VI_1" BACKUP 100');
    machine.handleLine('INSTANCE "VI_1" MASTER 100');
    await machine.settled();
    expect(kernel.running.map((d) => d.state)).toEqual(['master']);
    expect(kernel.calls.at(-1)).toBe('start master');
    machine.stop();
  });

  it('retries a failed switch with backoff, reporting each failure', async () => {
    vi.useFakeTimers();
    const kernel = new FakeDaemons();
    const { machine, errors, events } = follower();
    await machine.start(kernel, { openFifo: false });
    kernel.failStart = 2;
    machine.handleLine('INSTANCE "VI_1" MASTER 100');
    await machine.settled();
    expect(errors).toMatchObject([{ operation: 'sync-daemon', retryIn: 500 }]);
    expect((errors[0]!.error as IpvsError).code).toBe('ENODEV');
    expect(machine.status().daemon).toBe('none');
    await vi.advanceTimersByTimeAsync(500);
    await machine.settled();
    expect(errors.map((e) => e.retryIn)).toEqual([500, 1000]);
    await vi.advanceTimersByTimeAsync(1000);
    await machine.settled();
    expect(kernel.running.map((d) => d.state)).toEqual(['master']);
    expect(events.at(-1)).toBe('daemon none->master eth1 7');
    machine.stop();
  });

  it('stops switching once stopped', async () => {
    const kernel = new FakeDaemons();
    const { machine } = follower();
    await machine.start(kernel, { openFifo: false });
    machine.stop();
    machine.handleLine('INSTANCE "VI_1" MASTER 100');
    await machine.settled();
    expect(kernel.running.map((d) => d.state)).toEqual(['backup']);
  });
});

describe('FifoLineReader', () => {
  it('creates the FIFO, reads lines across writers and partial writes, and follows a replaced FIFO', async () => {
    const fifo = path.join(dir, 'notify.fifo');
    const lines: string[] = [];
    const errors: Error[] = [];
    const reader = new FifoLineReader(fifo, (line) => lines.push(line), (error) => errors.push(error));
    await reader.open();
    try {
      // Each write opens and closes the FIFO, as a notify script does: no end of file for the reader.
      writeFileSync(fifo, 'INSTANCE "VI_1" BACKUP 100\nINSTANCE "VI_1" MAS');
      writeFileSync(fifo, 'TER 100\n');
      await waitFor('two lines', () => lines.length >= 2 && lines, { timeoutMs: 5000, intervalMs: 10 });
      expect(lines).toEqual(['INSTANCE "VI_1" BACKUP 100', 'INSTANCE "VI_1" MASTER 100']);

      // keepalived deletes a FIFO it made when it stops, and makes a new one when it starts.
      unlinkSync(fifo);
      execFileSync('mkfifo', [fifo]);
      await waitFor('the new FIFO to be read', () => {
        try {
          // O_NONBLOCK write: ENXIO until the reader has the new FIFO open.
          execFileSync('sh', ['-c', `exec 3<>"${fifo}"; printf 'INSTANCE "VI_1" FAULT 0\\n' >&3`]);
        } catch {
          return false;
        }
        return lines.includes('INSTANCE "VI_1" FAULT 0');
      }, { timeoutMs: 10_000, intervalMs: 500 });
      expect(errors).toEqual([]);
    } finally {
      reader.close();
    }
  });

  it('refuses a path that is not a FIFO', async () => {
    const file = path.join(dir, 'plain');
    writeFileSync(file, '');
    const reader = new FifoLineReader(file, () => {}, () => {});
    await expect(reader.open()).rejects.toThrow(`${file} is not a FIFO`);
    reader.close();
  });
});

describe('a Director with the vrrp option', () => {
  it('follows the FIFO: vrrp and sync-daemon events, status, and the daemon switched', async () => {
    const kernel = new FakeDaemons();
    const ipvs = Object.create(Ipvs.prototype) as Ipvs;
    Object.assign(ipvs, {
      netns: undefined,
      listTable: async () => [],
      apply: async () => ({ plan: { operations: [] }, replanned: false, results: [], drift: [], ok: true }),
      listDaemons: () => kernel.listDaemons(),
      startDaemon: (spec: DaemonSpec) => kernel.startDaemon(spec),
      stopDaemon: (state: DaemonState) => kernel.stopDaemon(state),
      close: async () => {},
    });
    const fifo = path.join(dir, 'director.fifo');
    const director = new Director({ services: [], vrrp: { keepalivedFifo: fifo, instance: 'VI_1', sync } }, { ipvs });
    const events: DirectorEvent[] = [];
    director.on('vrrp', (e) => events.push(e));
    director.on('sync-daemon', (e) => events.push(e));
    await director.start();
    try {
      expect(kernel.running).toMatchObject([{ state: 'backup', interface: 'eth1', syncId: 7 }]);
      writeFileSync(fifo, 'INSTANCE "VI_1" MASTER 150\n');
      await waitFor('the master daemon', () => kernel.running[0]?.state === 'master' && events.length >= 3, { timeoutMs: 5000, intervalMs: 10 });
      expect(events.map((e) => e.type === 'vrrp' ? `vrrp ${e.from}->${e.to}` : e.type === 'sync-daemon' ? `daemon ${e.from}->${e.to}` : e.type))
        .toEqual(['daemon none->backup', 'vrrp unknown->master', 'daemon backup->master']);
      expect(director.status().vrrp).toMatchObject({ instance: 'VI_1', state: 'master', priority: 150, daemon: 'master', transitions: 1 });
    } finally {
      await director.stop();
    }
    // A stopped director leaves the daemon running (a restart must not interrupt the sync).
    expect(kernel.running.map((d) => d.state)).toEqual(['master']);
  });
});
