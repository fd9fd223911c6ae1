// Whole-state validation: every error names its path, duplicates are refused, and nothing is
// read or sent for an invalid state (checkPlanInput runs before any I/O in plan and apply).
import { describe, expect, it } from 'vitest';

import { checkPlanInput } from '../../../lib/reconcile/plan';
import { desiredSpecs } from '../../../lib/reconcile/desired';

const web = { protocol: 'tcp', address: '10.0.0.1', port: 80 } as const;
const ok = (destinations: unknown[] = [{ address: '10.1.0.1' }]) => ({ ...web, destinations });

function rejects(desired: unknown, error: typeof TypeError | typeof RangeError, message: string | RegExp, scope?: unknown, removal?: unknown): void {
  expect(() => checkPlanInput(desired, scope, removal)).toThrow(error);
  expect(() => checkPlanInput(desired, scope, removal)).toThrow(message);
}

describe('desired state validation', () => {
  it('names the path of a bad field, deep in the state', () => {
    const desired = [ok(), ok(), ok(), { ...web, port: 81, destinations: [{ address: '10.1.0.1' }, { address: '10.1.0.2', weight: -1 }] }];
    desired[1] = { ...web, port: 82, destinations: [] } as never;
    desired[2] = { ...web, port: 83, destinations: [] } as never;
    rejects(desired, RangeError, /^services\[3\]\.destinations\[1\]\.weight must be between 0 and 2147483647, got -1$/);
  });

  it.each([
    ['not an array', { services: [] }, TypeError, /^services must be an array of services, got an object/],
    ['a service that is not an object', [42], TypeError, /^services\[0\] must be an object, got 42/],
    ['no destinations', [{ ...web }], TypeError, /^services\[0\]\.destinations must be an array/],
    ['destinations not an array', [{ ...web, destinations: {} }], TypeError, /^services\[0\]\.destinations must be an array/],
    ['a bad service address', [{ ...web, address: '10.0.0.256', destinations: [] }], RangeError, /^services\[0\]\.address must be an IPv4 or IPv6 address/],
    ['an unknown service field', [{ ...web, schedular: 'rr', destinations: [] }], TypeError, /^services\[0\]\.schedular is not a known option/],
    ['an unknown scheduler', [{ ...web, scheduler: 'fastest', destinations: [] }], RangeError, /^services\[0\]\.scheduler must be one of/],
    ['onePacket on TCP', [{ ...web, onePacket: true, destinations: [] }], RangeError, /^services\[0\]\.onePacket applies only to UDP/],
    ['port 0 without persistence', [{ ...web, port: 0, destinations: [] }], RangeError, /^services\[0\]\.port must be 1–65535/],
    ['an IPv6 netmask on IPv4', [{ ...web, netmask: 64, destinations: [] }], TypeError, /^services\[0\]\.netmask must be a dotted IPv4 mask/],
    ['a destination that is not an object', [ok(['10.1.0.1'])], TypeError, /^services\[0\]\.destinations\[0\] must be an object/],
    ['an unknown destination field', [ok([{ address: '10.1.0.1', wieght: 2 }])], TypeError, /^services\[0\]\.destinations\[0\]\.wieght is not a known option/],
    ['a tunnel without forward tunnel', [ok([{ address: '10.1.0.1', tunnel: { type: 'gre' } }])], RangeError, /^services\[0\]\.destinations\[0\]\.tunnel needs forward 'tunnel'/],
    ['a GUE tunnel without port', [ok([{ address: '10.1.0.1', forward: 'tunnel', tunnel: { type: 'gue' } }])], RangeError, /^services\[0\]\.destinations\[0\]\.tunnel\.port is required/],
    ['mixed families without tunnel', [ok([{ address: '2001:db8::1' }])], RangeError, /^services\[0\]\.destinations\[0\]\.address is IPv6 but the service is IPv4/],
    ['lower above upper threshold', [ok([{ address: '10.1.0.1', upperThreshold: 5, lowerThreshold: 6 }])], RangeError, /^services\[0\]\.destinations\[0\]\.lowerThreshold \(6\) must not exceed/],
  ])('rejects %s', (_name, desired, error, message) => {
    rejects(desired, error, message);
  });

  it('rejects duplicate service keys, whatever their spelling', () => {
    rejects([ok(), { ...web, scheduler: 'rr', destinations: [] }], RangeError, /^services\[1\] has the same key \(tcp 10\.0\.0\.1:80\) as services\[0\]$/);
    rejects(
      [{ protocol: 'udp', address: '2001:db8::1', port: 53, destinations: [] }, { protocol: 'udp', address: '2001:DB8:0::1', port: 53, destinations: [] }],
      RangeError, /^services\[1\] has the same key \(udp \[2001:db8::1\]:53\) as services\[0\]$/,
    );
    rejects([{ fwmark: 7, destinations: [] }, { fwmark: 7, family: 'inet', destinations: [] }], RangeError, /^services\[1\] has the same key \(fwmark 7\)/);
    // Same mark, other family: two services.
    expect(checkPlanInput([{ fwmark: 7, destinations: [] }, { fwmark: 7, family: 'inet6', destinations: [] }], undefined, undefined).desired.keys)
      .toEqual(['fwmark 7', 'fwmark 7 inet6']);
  });

  it('rejects duplicate destination keys, the default port included', () => {
    rejects([ok([{ address: '10.1.0.1' }, { address: '10.1.0.1', port: 80, weight: 3 }])], RangeError,
      /^services\[0\]\.destinations\[1\] has the same key \(10\.1\.0\.1:80\) as services\[0\]\.destinations\[0\]$/);
    expect(() => checkPlanInput([ok([{ address: '10.1.0.1' }, { address: '10.1.0.1', port: 8080 }])], undefined, undefined)).not.toThrow();
  });

  it('checks the options', () => {
    rejects([], RangeError, /^options\.removal must be one of 'delete', 'quiesce'/, undefined, 'drain');
    rejects([], RangeError, /^options\.scope must be 'listed', 'all' or a filter object/, 'everything');
    rejects([], RangeError, /^options\.scope must give at least one of addresses, protocols, ports, fwmarks/, {});
    rejects([], TypeError, /^options\.scope\.vips is not a known option/, { vips: [] });
    rejects([], RangeError, /^options\.scope\.addresses\[1\] must be an IPv4 or IPv6 address or CIDR/, { addresses: ['10.0.0.0/8', 'ten'] });
    rejects([], RangeError, /^options\.scope\.addresses\[0\] has a prefix length that is not 0–128/, { addresses: ['2001:db8::/129'] });
    rejects([], RangeError, /^options\.scope\.ports\[0\]\[1\] must be between 0 and 65535/, { ports: [[1, 70000]] });
    rejects([], RangeError, /^options\.scope\.fwmarks\[0\] is an empty range: 9 > 3/, { fwmarks: [[9, 3]] });
    rejects([], RangeError, /^options\.scope\.fwmarks\[0\] must be between 1 and 4294967295/, { fwmarks: [0] });
    rejects([], RangeError, /^options\.scope\.protocols\[0\] must be one of/, { protocols: ['icmp'] });
  });

  it('refuses a desired service outside a filter scope', () => {
    rejects([ok()], RangeError, /^services\[0\] \(tcp 10\.0\.0\.1:80\) is outside the scope filter/, { addresses: ['10.9.0.0/16'] });
    expect(() => checkPlanInput([ok()], { addresses: ['10.0.0.0/8'], ports: [[1, 1024]] }, undefined)).not.toThrow();
  });

  it('writes every default out, as the kernel reports it', () => {
    const input = checkPlanInput([
      { ...web, destinations: [{ address: '10.1.0.1' }, { address: '10.1.0.2', forward: 'tunnel' }] },
      { fwmark: 3, family: 'inet6', destinations: [{ address: '2001:DB8::0:5', forward: 'masq' }] },
    ], undefined, undefined);
    expect(desiredSpecs(input.desired)).toEqual([
      {
        ...web, scheduler: 'wlc', netmask: '255.255.255.255', onePacket: false, schedulerFlags: [],
        destinations: [
          { address: '10.1.0.1', port: 80, forward: 'route', weight: 1, upperThreshold: 0, lowerThreshold: 0 },
          { address: '10.1.0.2', port: 80, forward: 'tunnel', weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: { type: 'ipip', checksum: 'none' } },
        ],
      },
      {
        fwmark: 3, family: 'inet6', scheduler: 'wlc', netmask: 128, onePacket: false, schedulerFlags: [],
        destinations: [{ address: '2001:db8::5', port: 0, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0 }],
      },
    ]);
  });
});

describe('filter scopes', () => {
  const owns = (scope: unknown, service: Record<string, unknown>): boolean => {
    const input = checkPlanInput([], scope, undefined);
    const full = { family: String(service.address ?? '').includes(':') ? 'inet6' : 'inet', ...service } as never;
    return input.scope.owns(full, 'x', new Set());
  };
  it('matches address services by CIDR, protocol and port, all given criteria together', () => {
    expect(owns({ addresses: ['10.0.0.0/8'] }, web)).toBe(true);
    expect(owns({ addresses: ['10.0.0.2/31'] }, web)).toBe(false);
    expect(owns({ addresses: ['10.0.0.0/31'] }, web)).toBe(true);
    expect(owns({ addresses: ['10.0.0.1'] }, web)).toBe(true);
    expect(owns({ addresses: ['0.0.0.0/0'] }, { ...web, address: '2001:db8::1' })).toBe(false);
    expect(owns({ addresses: ['2001:db8::/33'] }, { ...web, address: '2001:db8:7fff::1' })).toBe(true);
    expect(owns({ addresses: ['2001:db8::/33'] }, { ...web, address: '2001:db8:8000::1' })).toBe(false);
    expect(owns({ addresses: ['10.0.0.0/8'], protocols: ['udp'] }, web)).toBe(false);
    expect(owns({ protocols: ['udp', 'tcp'], ports: [[1, 79], 80] }, web)).toBe(true);
    expect(owns({ ports: [[81, 90]] }, web)).toBe(false);
    expect(owns({ fwmarks: [1] }, web)).toBe(false);
  });
  it('matches fwmark services by mark range only', () => {
    expect(owns({ fwmarks: [[100, 199]] }, { fwmark: 150, family: 'inet' })).toBe(true);
    expect(owns({ fwmarks: [[100, 199], 7] }, { fwmark: 7, family: 'inet6' })).toBe(true);
    expect(owns({ fwmarks: [[100, 199]] }, { fwmark: 200, family: 'inet' })).toBe(false);
    expect(owns({ addresses: ['0.0.0.0/0'], protocols: ['tcp'] }, { fwmark: 1, family: 'inet' })).toBe(false);
  });
});
