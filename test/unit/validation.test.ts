// Every invalid input is rejected in TypeScript with the right error class and a message that
// starts with the field's path, before anything reaches the addon. The addon is replaced by a
// recorder, so these run anywhere (no IPVS, no root).
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { Ipvs } from '../../lib/index';
import { D4, FW4, FW6, INVALID_INPUTS, S4, S6, describeInput, invoke, namesField } from '../invalid-inputs';

const calls: unknown[] = [];
const opens: unknown[] = [];

// The real addon's record layout (it loads on the host); the handle is a recorder.
vi.mock('../../lib/native', async (importActual) => {
  const actual = await importActual<typeof import('../../lib/native')>();
  const { recordLayout } = actual.nativeAddon();
  return {
    ...actual,
    nativeAddon: () => ({
      recordLayout,
      IpvsHandle: {
        open: async (netns: string) => {
          opens.push(netns);
          return {
            execute: async (request: unknown) => {
              calls.push(request);
              return [];
            },
            executeBatch: async (records: Uint32Array) => {
              calls.push(records);
              return { errors: new Int32Array(1), unknown: new Uint8Array(1), messages: {}, sendCalls: 1, overruns: 0 };
            },
            query: async (record: Uint32Array) => {
              calls.push(record);
              return { services: new Uint32Array(0), destinations: new Uint32Array(0), strings: [] };
            },
            close: () => {},
          };
        },
      },
    }),
  };
});

describe('invalid inputs', () => {
  let ipvs: Ipvs;
  beforeAll(async () => {
    ipvs = await Ipvs.open({ netns: '/run/netns/unit' });
  });
  beforeEach(() => {
    calls.length = 0;
    opens.length = 0;
  });

  it('has at least 100 rows, with no duplicates', () => {
    expect(INVALID_INPUTS.length).toBeGreaterThanOrEqual(100);
    const titles = INVALID_INPUTS.map((input, i) => describeInput(input, i).replace(/^#\d+ /, ''));
    expect(new Set(titles).size).toBe(titles.length);
  });

  it.each(INVALID_INPUTS.map((input, i) => [describeInput(input, i), input] as const))('%s', async (_title, input) => {
    const error = await invoke(Ipvs, ipvs, input).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(input.error);
    // RangeError and TypeError are siblings: make sure it is exactly the one expected.
    expect((error as Error).constructor).toBe(input.error);
    const message = (error as Error).message;
    expect(namesField(message, input.field), `"${message}" should start with ${input.field}`).toBe(true);
    expect(calls).toEqual([]);
    expect(opens).toEqual([]);
  });
});

// The recorder would make every assertion above vacuous if nothing ever reached it: valid
// versions of the same calls do reach it.
describe('valid inputs reach the addon', () => {
  it.each([
    ['getService', [S4]],
    ['getService', [S6]],
    ['getService', [FW4]],
    ['deleteService', [FW6]],
    ['addService', [{ ...S4, port: 81, scheduler: 'sh', schedulerFlags: ['sh-port', 'flag-3'], persistent: 60, netmask: '255.255.255.0' }]],
    ['addService', [{ ...S6, protocol: 'udp', port: 444, persistent: 60, netmask: 64, persistenceEngine: 'sip', onePacket: true }]],
    ['editService', [{ ...FW6, scheduler: 'mh', schedulerFlags: ['mh-fallback'] }]],
    ['addService', [{ ...S4, port: 0, persistent: 1 }]],
    ['addDestination', [S4, { ...D4, forward: 'masq', weight: 0, upperThreshold: 10, lowerThreshold: 10 }]],
    ['addDestination', [S4, { address: '2001:db8::9', family: 'inet6', forward: 'tunnel', tunnel: { type: 'gue', port: 6080, checksum: 'remcsum' } }]],
    ['addDestination', [S6, { address: '10.0.1.9', forward: 'tunnel', tunnel: { type: 'gre', checksum: 'csum' } }]],
    ['editDestination', [FW4, { address: '10.0.1.9', forward: 'local', weight: 2 ** 31 - 1 }]],
    ['deleteDestination', [S4, { address: '10.0.1.1', port: 8080, family: 'inet' }]],
    ['zero', [undefined]],
  ] as const)('%s %j', async (method, args) => {
    const ipvs = await Ipvs.open();
    calls.length = 0;
    // The recorder answers every request with nothing, so getService ends in ESRCH.
    await invoke(Ipvs, ipvs, { method, args: [...args], error: TypeError, field: '' }).catch((e: Error) => {
      expect(e.name).toBe('IpvsError');
    });
    expect(calls.length).toBeGreaterThan(0);
    await ipvs.close();
  });

  it('encodes a listed Service passed back as a key like the key itself', async () => {
    const ipvs = await Ipvs.open();
    calls.length = 0;
    const listed = {
      ...S6, family: 'inet6', scheduler: 'rr', persistent: 300, netmask: 64, onePacket: false,
      schedulerFlags: [], stats: {},
    };
    await ipvs.getService(listed as never).catch(() => {});
    await ipvs.getService(S6).catch(() => {});
    expect(calls[0]).toEqual(calls[1]);
    await ipvs.close();
  });
});
