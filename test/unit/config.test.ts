// Validation of timeouts and sync-daemon specs: every bad input is refused before anything is
// sent, with a TypeError (wrong kind) or RangeError (wrong value) whose message names the field.
import { describe, expect, it } from 'vitest';

import {
  MAX_TIMEOUT_SECONDS, SYNC_MAXLEN_LIMITS, checkDaemonSpec, checkDaemonState, checkTimeouts, daemonFromWire,
  timeoutsFromWire,
} from '../../lib/config';

function rejects(fn: () => unknown, kind: typeof TypeError | typeof RangeError, field: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${kind.name} for ${field}`).toBeInstanceOf(kind);
  expect((caught as Error).message.startsWith(field)).toBe(true);
}

describe('checkTimeouts', () => {
  it('maps given fields and sends 0 (= unchanged) for omitted ones', () => {
    expect(checkTimeouts({ tcp: 900, tcpFin: 120, udp: 300 })).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
    expect(checkTimeouts({ udp: 5 })).toEqual({ tcp: 0, tcpFin: 0, udp: 5 });
    expect(checkTimeouts({ tcp: MAX_TIMEOUT_SECONDS })).toEqual({ tcp: MAX_TIMEOUT_SECONDS, tcpFin: 0, udp: 0 });
  });

  it('keeps the limit valid on a HZ=1000 kernel (INT_MAX / HZ)', () => {
    expect(MAX_TIMEOUT_SECONDS).toBe(2147483);
    expect(MAX_TIMEOUT_SECONDS * 1000).toBeLessThanOrEqual(0x7fffffff);
  });

  it.each([
    ['not an object', null, TypeError, 'timeouts'],
    ['an array', [900], TypeError, 'timeouts'],
    ['nothing to set', {}, TypeError, 'timeouts'],
    ['all undefined', { tcp: undefined }, TypeError, 'timeouts'],
    ['an unknown key', { tcp: 1, fin: 2 }, TypeError, 'timeouts.fin'],
    ['a string', { tcp: '900' }, TypeError, 'timeouts.tcp'],
    ['a bigint', { udp: 300n }, TypeError, 'timeouts.udp'],
    ['zero', { tcp: 0 }, RangeError, 'timeouts.tcp'],
    ['negative', { tcpFin: -1 }, RangeError, 'timeouts.tcpFin'],
    ['a fraction', { udp: 1.5 }, RangeError, 'timeouts.udp'],
    ['NaN', { tcp: Number.NaN }, RangeError, 'timeouts.tcp'],
    ['above INT_MAX / 1000', { tcp: MAX_TIMEOUT_SECONDS + 1 }, RangeError, 'timeouts.tcp'],
    ['above u32', { udp: 2 ** 32 }, RangeError, 'timeouts.udp'],
  ] as const)('refuses %s', (_label, input, kind, field) => {
    rejects(() => checkTimeouts(input), kind, field);
  });

  it('reads back every field', () => {
    expect(timeoutsFromWire({ tcp: 1, tcpFin: 2, udp: 3 })).toEqual({ tcp: 1, tcpFin: 2, udp: 3 });
  });
});

describe('checkDaemonSpec', () => {
  it('maps a full IPv4 spec', () => {
    const wire = checkDaemonSpec({
      state: 'master', interface: 'eth0', syncId: 255, maxLength: 1200, group: '239.1.2.3', port: 9000, ttl: 4,
    });
    expect(wire).toEqual({
      state: 1, interface: 'eth0', syncId: 255, maxLength: 1200, group4: Buffer.from([239, 1, 2, 3]), port: 9000, ttl: 4,
    });
  });

  it('maps an IPv6 group to 16 bytes and defaults syncId to 0', () => {
    const wire = checkDaemonSpec({ state: 'backup', interface: 'veth-b', group: 'ff02::1:81' });
    expect(wire.state).toBe(2);
    expect(wire.syncId).toBe(0);
    expect(wire.group4).toBeUndefined();
    expect(wire.group6).toEqual(Buffer.from('ff020000000000000000000000010081', 'hex'));
    expect(wire.maxLength).toBeUndefined();
    expect(wire.port).toBeUndefined();
    expect(wire.ttl).toBeUndefined();
  });

  it('accepts the kernel limits of maxLength exactly', () => {
    expect(SYNC_MAXLEN_LIMITS.max).toEqual({ inet: 65507, inet6: 65487 });
    expect(checkDaemonSpec({ state: 'master', interface: 'e', maxLength: 1 }).maxLength).toBe(1);
    expect(checkDaemonSpec({ state: 'master', interface: 'e', maxLength: 65507 }).maxLength).toBe(65507);
    expect(checkDaemonSpec({ state: 'backup', interface: 'e', maxLength: 1024 }).maxLength).toBe(1024);
    expect(checkDaemonSpec({ state: 'backup', interface: 'e', group: 'ff02::1', maxLength: 65487 }).maxLength).toBe(65487);
    expect(checkDaemonSpec({ state: 'master', interface: 'abcdefghijklmno' }).interface).toBe('abcdefghijklmno');
  });

  const base = { state: 'master', interface: 'eth0' } as const;
  it.each([
    ['not an object', 'master', TypeError, 'daemon'],
    ['an unknown key', { ...base, mcastPort: 1 }, TypeError, 'daemon.mcastPort'],
    ['a missing state', { interface: 'eth0' }, TypeError, 'daemon.state'],
    ['an unknown state', { ...base, state: 'none' }, RangeError, 'daemon.state'],
    ['a missing interface', { state: 'master' }, TypeError, 'daemon.interface'],
    ['an empty interface', { ...base, interface: '' }, RangeError, 'daemon.interface'],
    ['a 16-byte interface', { ...base, interface: 'abcdefghijklmnop' }, RangeError, 'daemon.interface'],
    ['a 16-byte UTF-8 interface', { ...base, interface: 'ééééééééé' }, RangeError, 'daemon.interface'],
    ['an interface with a slash', { ...base, interface: 'a/b' }, RangeError, 'daemon.interface'],
    ['an interface with a colon', { ...base, interface: 'eth0:1' }, RangeError, 'daemon.interface'],
    ['an interface with a space', { ...base, interface: 'eth 0' }, RangeError, 'daemon.interface'],
    ['an interface with a NUL', { ...base, interface: 'eth\0' }, RangeError, 'daemon.interface'],
    ['the interface "."', { ...base, interface: '.' }, RangeError, 'daemon.interface'],
    ['the interface ".."', { ...base, interface: '..' }, RangeError, 'daemon.interface'],
    ['a string syncId', { ...base, syncId: '1' }, TypeError, 'daemon.syncId'],
    ['a negative syncId', { ...base, syncId: -1 }, RangeError, 'daemon.syncId'],
    ['syncId 256 (the header byte)', { ...base, syncId: 256 }, RangeError, 'daemon.syncId'],
    ['maxLength 0', { ...base, maxLength: 0 }, RangeError, 'daemon.maxLength'],
    ['maxLength above 65535 - 28 (IPv4)', { ...base, maxLength: 65508 }, RangeError, 'daemon.maxLength'],
    ['maxLength above 65535 - 48 (IPv6)', { ...base, group: 'ff02::81', maxLength: 65488 }, RangeError, 'daemon.maxLength'],
    ['backup maxLength below 1024', { ...base, state: 'backup', maxLength: 1023 }, RangeError, 'daemon.maxLength'],
    ['a fractional maxLength', { ...base, maxLength: 1000.5 }, RangeError, 'daemon.maxLength'],
    ['a unicast IPv4 group', { ...base, group: '10.0.0.1' }, RangeError, 'daemon.group'],
    ['a broadcast IPv4 group', { ...base, group: '255.255.255.255' }, RangeError, 'daemon.group'],
    ['a unicast IPv6 group', { ...base, group: 'fe80::1' }, RangeError, 'daemon.group'],
    ['a hostname group', { ...base, group: 'sync.local' }, RangeError, 'daemon.group'],
    ['a numeric group', { ...base, group: 0xe0000051 }, TypeError, 'daemon.group'],
    ['port 0', { ...base, port: 0 }, RangeError, 'daemon.port'],
    ['port 65536', { ...base, port: 65536 }, RangeError, 'daemon.port'],
    ['a string port', { ...base, port: '8848' }, TypeError, 'daemon.port'],
    ['ttl 0', { ...base, ttl: 0 }, RangeError, 'daemon.ttl'],
    ['ttl 256', { ...base, ttl: 256 }, RangeError, 'daemon.ttl'],
    ['a boolean ttl', { ...base, ttl: true }, TypeError, 'daemon.ttl'],
  ] as const)('refuses %s', (_label, input, kind, field) => {
    rejects(() => checkDaemonSpec(input), kind, field);
  });

  it('checks the state for stopDaemon', () => {
    expect(checkDaemonState('master')).toBe(1);
    expect(checkDaemonState('backup')).toBe(2);
    rejects(() => checkDaemonState('both'), RangeError, 'state');
    rejects(() => checkDaemonState(1), TypeError, 'state');
  });
});

describe('daemonFromWire', () => {
  it('decodes an IPv4 and an IPv6 group and every field', () => {
    expect(daemonFromWire({
      state: 2, interface: 'v1', syncId: 7, maxLength: 1472, group4: Buffer.from([224, 0, 0, 81]), port: 8848, ttl: 1,
    })).toEqual({ state: 'backup', interface: 'v1', syncId: 7, maxLength: 1472, group: '224.0.0.81', port: 8848, ttl: 1 });
    expect(daemonFromWire({
      state: 1, interface: 'v0', syncId: 0, group6: Buffer.from('ff020000000000000000000000010081', 'hex'),
    })).toEqual({ state: 'master', interface: 'v0', syncId: 0, group: 'ff02::1:81' });
  });
});
